// False-refusal run page: follows a running run's progress (from PostgreSQL, through the API)
// and reloads when it is done; draws each model's bars (with Wilson 95% error bars) from the
// page's JSON. Without JavaScript the page refreshes itself while running, and the table has
// every number. Needs jobs.js first.
(function () {
  "use strict";
  var jobs = window.RefusalLabJobs;
  var running = document.getElementById("frr-progress");
  if (running && running.getAttribute("data-finished") === "0") {
    var bar = running.querySelector("progress");
    var counts = running.querySelector(".frr-counts");
    jobs.follow(running.getAttribute("data-url"), function (p) {
      bar.value = p.percent;
      counts.textContent = p.generated + " of " + p.total + " answered, " + p.labelled + " labelled";
    });
  }
  jobs.drawFigures("frr-data");
})();
