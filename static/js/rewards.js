// Reward-model scores page: follows running scoring runs (progress from PostgreSQL, through the
// API) and reloads once they finish; draws the chosen run's figures from the page's JSON.
// Without JavaScript the page refreshes itself while the newest run runs; tables have every number.
(function () {
  "use strict";
  var rows = Array.prototype.slice.call(document.querySelectorAll("tr[data-run][data-finished='0']"));
  function poll() {
    Promise.all(rows.map(function (row) {
      return fetch(row.getAttribute("data-url"), { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (run) {
          if (!run) { return false; }
          var p = run.progress;
          row.querySelector("progress").value = p.percent;
          row.querySelector(".run-counts").textContent = p.done + "/" + p.total + " scored" +
            (p.failed ? ", " + p.failed + " failed" : "") + (p.unparsed ? ", " + p.unparsed + " unparsed" : "");
          return p.finished;
        });
    })).then(function (finished) {
      if (finished.every(Boolean)) { window.location.reload(); } else { setTimeout(poll, 2000); }
    }, function () { setTimeout(poll, 5000); });
  }
  if (rows.length) { setTimeout(poll, 2000); }
  var dataElement = document.getElementById("rewards-data");
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
