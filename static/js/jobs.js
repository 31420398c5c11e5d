// Shared by the pages that follow a job (power, model behaviour, false refusal, reward scores):
// poll progress from the API until the job finishes, then reload; draw Plotly figures from the
// page's JSON. Loaded (deferred) before the page's own script, which calls window.RefusalLabJobs.
(function () {
  "use strict";
  var PLOT_CONFIG = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["select2d", "lasso2d"] };

  // The JSON at url, or null for an error status (the network failing rejects instead).
  function getJson(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; });
  }

  // One job: show(progress) after each answer; reload once it is finished. Errors wait longer.
  function follow(url, show) {
    var poll = function () {
      getJson(url).then(function (data) {
        if (!data) { setTimeout(poll, 5000); return; }
        show(data.progress);
        if (data.progress.finished) { window.location.reload(); } else { setTimeout(poll, 1500); }
      }, function () { setTimeout(poll, 5000); });
    };
    setTimeout(poll, 1500);
  }

  // Several jobs, one table row each (its data-url): show(row, progress) after each answer;
  // reload once every one is finished.
  function followRows(rows, show) {
    function poll() {
      Promise.all(rows.map(function (row) {
        return getJson(row.getAttribute("data-url")).then(function (run) {
          if (!run) { return false; }
          show(row, run.progress);
          return run.progress.finished;
        });
      })).then(function (finished) {
        if (finished.every(Boolean)) { window.location.reload(); } else { setTimeout(poll, 2000); }
      }, function () { setTimeout(poll, 5000); });
    }
    if (rows.length) { setTimeout(poll, 2000); }
  }

  // Each figure of the JSON in <script id=elementId> into its [data-figure=name] element, which
  // is shown and marked data-drawn once drawn. Nothing without the JSON or without Plotly.
  function drawFigures(elementId) {
    var dataElement = document.getElementById(elementId);
    if (!dataElement || typeof window.Plotly === "undefined") { return; }
    var payload = JSON.parse(dataElement.textContent);
    if (!payload) { return; }
    Object.keys(payload.figures).forEach(function (name) {
      var target = document.querySelector("[data-figure='" + name + "']");
      if (!target) { return; }
      target.hidden = false;
      window.Plotly.newPlot(target, payload.figures[name].data, payload.figures[name].layout, PLOT_CONFIG)
        .then(function () { target.setAttribute("data-drawn", "true"); });
    });
  }

  window.RefusalLabJobs = { getJson: getJson, follow: follow, followRows: followRows, drawFigures: drawFigures };
})();
