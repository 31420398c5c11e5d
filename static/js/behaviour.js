// Model behaviour page: follows a running classification's progress (from PostgreSQL, through
// the API) and reloads when it is done; draws each model's stacked bars from the page's JSON.
// Without JavaScript the page refreshes itself while running, and the tables have every number.
// Needs jobs.js first.
(function () {
  "use strict";
  var jobs = window.RefusalLabJobs;
  var running = document.getElementById("behaviour-progress");
  if (running && running.getAttribute("data-finished") === "0") {
    var bar = running.querySelector("progress");
    var counts = running.querySelector(".behaviour-counts");
    // Only the progress: the distribution is read once the page reloads.
    jobs.follow(running.getAttribute("data-url") + "?progress_only=1", function (p) {
      bar.value = p.percent;
      counts.textContent = p.done + " of " + p.total + " responses classified";
    });
  }
  jobs.drawFigures("behaviour-data");
})();
