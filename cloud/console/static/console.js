// The console's page script: live Overview tiles over SSE, their sparklines, the rule form's help.
// No library and nothing fetched from elsewhere: plants are often offline.
"use strict";
(function () {
  var SVG = "http://www.w3.org/2000/svg";

  function percent(v) { return v === null || v === undefined ? "-" : (100 * v).toFixed(1) + "%"; }

  // A polyline of the rate per minute over the whole hour: x is the minute's place in the hour
  // (the series always holds every minute), so a young line draws at the right, where "now" is.
  // Gaps (nothing inspected) are skipped; zero sits on the base rule.
  function sparkline(el, series) {
    var w = 120, h = 30, top = 0, i, pts = [];
    for (i = 0; i < series.length; i++) { if (series[i] !== null && series[i] > top) { top = series[i]; } }
    var peak = top;
    top = top || 1;
    for (i = 0; i < series.length; i++) {
      if (series[i] === null) { continue; }
      var x = series.length > 1 ? (i * w) / (series.length - 1) : 0;
      pts.push(x.toFixed(1) + "," + (h - 1 - (series[i] / top) * (h - 3)).toFixed(1));
    }
    var svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 " + w + " " + h);
    svg.setAttribute("preserveAspectRatio", "none");
    var base = document.createElementNS(SVG, "line");
    base.setAttribute("x1", "0"); base.setAttribute("x2", String(w));
    base.setAttribute("y1", String(h - 1)); base.setAttribute("y2", String(h - 1));
    svg.appendChild(base);
    var line = document.createElementNS(SVG, "polyline");
    line.setAttribute("points", pts.join(" "));
    svg.appendChild(line);
    if (pts.length) { // mark the newest value: a lone point draws no line
      // A zero-length round-capped stroke, not a circle: the stretched viewBox would squash a circle.
      var last = pts[pts.length - 1].split(","), dot = document.createElementNS(SVG, "line");
      dot.setAttribute("class", "dot");
      dot.setAttribute("x1", last[0]); dot.setAttribute("y1", last[1]);
      dot.setAttribute("x2", last[0]); dot.setAttribute("y2", last[1]);
      svg.appendChild(dot);
    }
    el.replaceChildren(svg);
    var max = el.parentNode && el.parentNode.querySelector(".spark-max");
    if (max) { max.textContent = pts.length ? "· max " + percent(peak) : "· no data yet"; }
  }

  function setText(tile, key, text) {
    var el = tile.querySelector('[data-k="' + key + '"]');
    if (el && el.textContent !== text) { el.textContent = text; }
  }

  function update(summary) {
    var holder = document.getElementById("tiles");
    summary.lines.forEach(function (t) {
      var tile = holder.querySelector('[data-line="' + CSS.escape(t.line) + '"]');
      if (!tile) { window.location.reload(); return; } // a new line appeared: re-render once
      setText(tile, "throughput_per_min", t.throughput_per_min.toFixed(1));
      setText(tile, "results_hour", String(t.results_hour));
      setText(tile, "defect_rate", percent(t.defect_rate));
      setText(tile, "damaged_rate", percent(t.damaged_rate));
      setText(tile, "models", t.models.join(", ") || "-");
      setText(tile, "gateways_online", String(t.gateways_online));
      setText(tile, "gateways_offline", String(t.gateways_offline));
      setText(tile, "open_alerts", String(t.open_alerts));
      setText(tile, "notes_hour", String(t.notes_hour));
      setText(tile, "notes_per_min", t.notes_per_min.toFixed(1));
      setText(tile, "urgent_notes_hour", String(t.urgent_notes_hour));
      sparkline(tile.querySelector(".spark"), t.series);
    });
    var stamp = document.getElementById("updated");
    if (stamp) { stamp.textContent = summary.at.slice(0, 19).replace("T", " "); }
  }

  function live() {
    var holder = document.getElementById("tiles");
    if (!holder || !window.EventSource) { return; }
    var source = new EventSource(holder.dataset.live);
    source.addEventListener("summary", function (ev) { update(JSON.parse(ev.data)); });
    source.addEventListener("gone", function () { source.close(); window.location.assign("/login"); });
  }

  // The alert-rule form: the threshold's unit and help follow the chosen kind. Without this
  // script every kind's line stays visible, which still reads right.
  function ruleKindHelp() {
    var kind = document.getElementById("rule-kind"), unit = document.getElementById("threshold-unit");
    if (!kind || !unit) { return; }
    function show() {
      document.querySelectorAll("#threshold-help .kind-hint").forEach(function (hint) {
        var chosen = hint.dataset.kind === kind.value;
        hint.hidden = !chosen;
        if (chosen) { unit.textContent = "(" + hint.dataset.unit + ")"; }
      });
    }
    kind.addEventListener("change", show);
    show();
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(".spark[data-series]").forEach(function (el) {
      sparkline(el, JSON.parse(el.dataset.series));
    });
    ruleKindHelp();
    live();
  });
})();
