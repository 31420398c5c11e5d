// Model behaviour page: follows a running classification's progress (from PostgreSQL, through
// the API) and reloads when it is done; draws each model's stacked bars from the page's JSON.
// Without JavaScript the page refreshes itself while running, and the tables have every number.
(function () {
  "use strict";
  var running = document.getElementById("behaviour-progress");
  if (running && running.getAttribute("data-finished") === "0") {
    // Only the progress: the distribution is read once the page reloads.
    var url = running.getAttribute("data-url") + "?progress_only=1";
    var bar = running.querySelector("progress");
    var counts = running.querySelector(".behaviour-counts");
    var poll = function () {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) {
          if (!data) { setTimeout(poll, 5000); return; }
          var p = data.progress;
          bar.value = p.percent;
          counts.textContent = p.done + " of " + p.total + " responses classified";
          if (p.finished) { window.location.reload(); } else { setTimeout(poll, 1500); }
        }, function () { setTimeout(poll, 5000); });
    };
    setTimeout(poll, 1500);
  }
  var dataElement = document.getElementById("behaviour-data");
  if (!dataElement || typeof window.Plotly === "undefined") { return; }
  var payload = JSON.parse(dataElement.textContent);
  if (!payload) { return; }
  var config = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["select2d", "lasso2d"] };
  Object.keys(payload.figures).forEach(function (name) {
    var target = document.querySelector("[data-figure='" + name + "']");
    if (!target) { return; }
    target.hidden = false;
    window.Plotly.newPlot(target, payload.figures[name].data, payload.figures[name].layout, config)
      .then(function () { target.setAttribute("data-drawn", "true"); });
  });
})();
