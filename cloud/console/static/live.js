// Live Line, Notes, Rollout(s) and Gateway(s) pages over SSE, the Line page's disposition buttons, and
// the version picker of the "new rollout" form.
// The server sends ready-made page fragments (rendered by the same templates as the page), so
// this file only swaps them in. No library and nothing fetched from elsewhere.
"use strict";
(function () {
  function fragment(html) {
    var t = document.createElement("template");
    t.innerHTML = html;
    return t.content;
  }

  function swapParts(parts) {
    Object.keys(parts || {}).forEach(function (key) {
      var el = document.querySelector('[data-part="' + key + '"]');
      if (!el) { return; }
      // A <details> the user opened stays open across the swap (the gateway page's OTA JSON).
      var open = Array.prototype.map.call(el.querySelectorAll("details"), function (d) { return d.open; });
      el.replaceChildren(fragment(parts[key]));
      el.querySelectorAll("details").forEach(function (d, i) { if (open[i]) { d.open = true; } });
    });
  }

  // New entries (defect pictures, notes) go to the front of their list; the oldest fall off the end.
  function prependNew(listId, items, keep) {
    var list = document.getElementById(listId);
    if (!list || !items || !items.length) { return; }
    items.forEach(function (item) {
      if (list.querySelector(':scope > [data-id="' + CSS.escape(item.id) + '"]')) { return; }
      list.prepend(fragment(item.html));
    });
    while (list.children.length > keep) { list.lastElementChild.remove(); }
    var empty = document.getElementById(listId + "-empty");
    if (empty) { empty.remove(); }
  }

  // Gallery tiles drawn anew (an operator set a disposition): replaced where they stand, except a
  // tile the user is working in (typing its note), which the next answer or reload brings up to date.
  function redrawTiles(items) {
    (items || []).forEach(function (item) {
      var tile = document.querySelector('#gallery > [data-id="' + CSS.escape(item.id) + '"]');
      if (tile && !tile.contains(document.activeElement)) { tile.replaceWith(fragment(item.html)); }
    });
  }

  // A gallery tile's disposition buttons: posted in the background and the tile's disposition block
  // swapped for the answer, so the page keeps its place. Without this script the form posts
  // and the page comes back.
  function dispositionForms() {
    document.addEventListener("submit", function (ev) {
      var form = ev.target;
      if (!form.matches || !form.matches("form.dispo-form")) { return; }
      ev.preventDefault();
      var body = new URLSearchParams(new FormData(form));
      if (ev.submitter && ev.submitter.name) { body.set(ev.submitter.name, ev.submitter.value); }
      var block = form.closest(".dispo");
      function refused(text) {
        var error = block.querySelector(".error") || document.createElement("p");
        error.className = "error";
        error.setAttribute("role", "alert");
        error.textContent = text;
        block.prepend(error);
      }
      fetch(form.action, {method: "POST", body: body, headers: {"X-Console-Fragment": "disposition"}})
        .then(function (answer) {
          return answer.text().then(function (text) {
            if (answer.ok) { block.replaceWith(fragment(text)); } else { refused(text); }
          });
        })
        .catch(function (err) { refused("Not saved: " + err.message); });
    });
  }

  // Changed rows of the Gateways list, each a whole <tr> (its class says online or offline).
  function replaceRows(rows) {
    Object.keys(rows || {}).forEach(function (id) {
      var row = document.querySelector('tr[data-gateway="' + CSS.escape(id) + '"]');
      if (row) { row.replaceWith(fragment(rows[id])); }
    });
  }

  function stamp(at) {
    var el = document.getElementById("updated");
    if (el && at) { el.textContent = at.slice(0, 19).replace("T", " "); }
  }

  function showRolloutState(update) {
    var badge = document.getElementById("state");
    if (badge) { badge.textContent = update.state; badge.className = "badge state-" + update.state; }
    var actions = document.getElementById("actions");
    if (!actions) { return; }
    if (update.ended) { actions.hidden = true; return; }
    // The buttons follow the state: pause while running, resume while paused, abort in both.
    actions.querySelectorAll("form[data-when]").forEach(function (f) {
      f.hidden = f.dataset.when.split(" ").indexOf(update.state) < 0;
    });
  }

  function live() {
    var holder = document.getElementById("live");
    if (!holder || !holder.dataset.live || !window.EventSource) { return; }
    var source = new EventSource(holder.dataset.live);
    source.addEventListener("line", function (ev) {
      var update = JSON.parse(ev.data);
      swapParts(update.parts);
      prependNew("gallery", update.gallery, update.keep);
      redrawTiles(update.redrawn);
      stamp(update.at);
    });
    // A line's Notes page: notes it has not shown yet, newest at the top, and its counts.
    source.addEventListener("notes", function (ev) {
      var update = JSON.parse(ev.data);
      swapParts(update.parts);
      prependNew("notes", update.notes, update.keep);
    });
    source.addEventListener("rollout", function (ev) {
      var update = JSON.parse(ev.data);
      swapParts(update.parts);
      showRolloutState(update);
      if (update.ended) { source.close(); }
    });
    // The Rollouts list: its table (state and progress of each rollout) as the server rendered it.
    source.addEventListener("rollouts", function (ev) {
      swapParts(JSON.parse(ev.data).parts);
    });
    // The Gateways list: the table when the fleet changed, else the rows that did.
    source.addEventListener("gateways", function (ev) {
      var update = JSON.parse(ev.data);
      swapParts(update.parts);
      replaceRows(update.rows);
    });
    source.addEventListener("gateway", function (ev) {
      swapParts(JSON.parse(ev.data).parts);
    });
    source.addEventListener("gone", function () {
      source.close();
      window.location.assign("/login?next=" + encodeURIComponent(window.location.pathname));
    });
    source.addEventListener("failed", function (ev) {
      source.close();
      var note = document.createElement("p");
      note.className = "error";
      note.setAttribute("role", "alert");
      note.textContent = "Live updates stopped: " + JSON.parse(ev.data).detail;
      holder.prepend(note);
    });
  }

  // Offer only the chosen model's versions (all are in the page, grouped by model).
  function versionPicker() {
    var model = document.getElementById("model_name"), version = document.getElementById("version");
    if (!model || !version) { return; }
    function sync() {
      var first = null, keep = false;
      version.querySelectorAll("optgroup").forEach(function (group) {
        var mine = group.dataset.model === model.value;
        group.hidden = !mine;
        group.disabled = !mine;
        if (mine) {
          first = first || group.querySelector("option");
          keep = keep || Array.prototype.indexOf.call(group.children, version.selectedOptions[0]) >= 0;
        }
      });
      if (!keep && first) { first.selected = true; }
    }
    model.addEventListener("change", sync);
    sync();
  }

  document.addEventListener("DOMContentLoaded", function () {
    live();
    versionPicker();
    dispositionForms();
  });
})();
