// The Dataset page's label bar (operators): select frames (tap, shift-click for a range, select
// all), then one label for all of them by button or key (g good, s skip, 1..9 the kinds, a all,
// Esc clear). The labels go to the console, which sends them to the API as the user; the tiles
// and the counts change in place. No library and nothing fetched from elsewhere.
"use strict";
(function () {
  document.addEventListener("DOMContentLoaded", function () {
    var bar = document.getElementById("label-bar"), gallery = document.getElementById("frames");
    if (!bar || !gallery) { return; }
    var tiles = Array.prototype.slice.call(gallery.querySelectorAll("figure[data-file]"));
    var error = document.getElementById("label-error"), last = null;

    function selected() { return tiles.filter(function (t) { return t.classList.contains("selected"); }); }
    function mark(tile, on) {
      tile.classList.toggle("selected", on);
      tile.setAttribute("aria-checked", on ? "true" : "false");
    }
    function counted() { document.getElementById("selected-count").textContent = String(selected().length); }
    function all(on) { tiles.forEach(function (t) { mark(t, on); }); last = null; counted(); }

    // A tap toggles a frame; shift-click sets the range from the last tapped one to its state.
    function pick(tile, range) {
      var on = !tile.classList.contains("selected");
      if (range && last !== null) {
        var a = tiles.indexOf(last), b = tiles.indexOf(tile);
        tiles.slice(Math.min(a, b), Math.max(a, b) + 1).forEach(function (t) { mark(t, on); });
      } else {
        mark(tile, on);
      }
      last = tile;
      counted();
    }

    function shown(text) { error.textContent = text; error.hidden = !text; }

    function apply(label) {
      var chosen = selected();
      if (!label) { shown("Type the new defect kind first."); return; }
      if (!chosen.length) { shown("Select frames first: tap them, or press a for all on this page."); return; }
      var body = new URLSearchParams({label: label});
      chosen.forEach(function (t) { body.append("file", t.dataset.file); });
      fetch(bar.dataset.url, {method: "POST", body: body}).then(function (answer) {
        if (!answer.ok) {
          return answer.text().then(function (text) { shown(text || "The labels were refused (" + answer.status + ")."); });
        }
        return answer.json().then(function (done) {
          shown("");
          chosen.forEach(function (t) {
            t.dataset.label = done.label;
            t.querySelector(".frame-label").textContent = done.label;
          });
          document.querySelector('#label-counts [data-k="labelled"]').textContent = String(done.labelled);
          document.querySelector('#label-counts [data-k="unlabelled"]').textContent = String(done.unlabelled);
          all(false);
        });
      }).catch(function () { shown("The console could not be reached; nothing was labelled."); });
    }

    gallery.addEventListener("click", function (ev) {
      var tile = ev.target.closest("figure[data-file]");
      if (!tile) { return; }
      ev.preventDefault(); // a tap selects; the picture's link is for viewers and a new tab
      pick(tile, ev.shiftKey);
    });
    bar.addEventListener("click", function (ev) {
      var button = ev.target.closest("button");
      if (!button) { return; }
      if (button.dataset.label) { apply(button.dataset.label); }
      else if (button.id === "select-all") { all(true); }
      else if (button.id === "clear-selection") { all(false); }
      else if (button.id === "apply-new-kind") { apply(document.getElementById("new-kind").value.trim()); }
    });
    document.addEventListener("keydown", function (ev) {
      if (ev.ctrlKey || ev.metaKey || ev.altKey) { return; }
      var typing = ev.target.closest && ev.target.closest("input, select, textarea");
      if (typing) {
        if (ev.key === "Enter" && ev.target.id === "new-kind") { apply(ev.target.value.trim()); }
        return;
      }
      var key = ev.key, button = null;
      if (key === "g") { button = bar.querySelector('button[data-label="good"]'); }
      else if (key === "s") { button = bar.querySelector('button[data-label="skip"]'); }
      else if (/^[1-9]$/.test(key)) { button = bar.querySelector('button[data-key="' + key + '"]'); }
      else if (key === "a") { all(true); }
      else if (key === "Escape") { all(false); }
      else if ((key === " " || key === "Enter") && ev.target.matches && ev.target.matches("figure[data-file]")) {
        pick(ev.target, ev.shiftKey);
      } else { return; }
      ev.preventDefault();
      if (button) { apply(button.dataset.label); }
    });
  });
})();
