// Reward-model scores page: follows running scoring runs (progress from PostgreSQL, through the
// API) and reloads once they finish; draws the chosen run's figures from the page's JSON.
// Without JavaScript the page refreshes itself while the newest run runs; tables have every number.
// Needs jobs.js first.
(function () {
  "use strict";
  var jobs = window.RefusalLabJobs;
  var rows = Array.prototype.slice.call(document.querySelectorAll("tr[data-run][data-finished='0']"));
  jobs.followRows(rows, function (row, p) {
    row.querySelector("progress").value = p.percent;
    row.querySelector(".run-counts").textContent = p.done + "/" + p.total + " scored" +
      (p.failed ? ", " + p.failed + " failed" : "") + (p.unparsed ? ", " + p.unparsed + " unparsed" : "");
  });
  jobs.drawFigures("rewards-data");
})();
