// A training run that is queued or running changes on its own: reload its view every few seconds
// until it has finished (the server renders each state; nothing is assembled here).
(function () {
  "use strict";
  const view = document.getElementById("run");
  if (!view || view.dataset.active !== "true") return;
  window.setTimeout(function () { window.location.reload(); }, 3000);
})();
