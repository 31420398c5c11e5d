// Power planning page: follows a running simulation's progress (from PostgreSQL, through the
// API) and reloads when it is done; draws the finished power curve from the page's JSON.
// Without JavaScript the page refreshes itself while running, and the table has every number.
// Needs jobs.js first.
(function () {
  "use strict";
  var jobs = window.RefusalLabJobs;
  var running = document.getElementById("power-progress");
  if (running && running.getAttribute("data-finished") === "0") {
    var bar = running.querySelector("progress");
    var counts = running.querySelector(".power-counts");
    jobs.follow(running.getAttribute("data-url"), function (p) {
      bar.value = p.percent;
      counts.textContent = p.done + " of " + p.total + " model fits";
    });
  }
  jobs.drawFigures("power-data");
})();
