// Query–scenario pages: follow a running job's progress (from PostgreSQL, through the API) and
// reload when its rounds are over; on the list, follow every running job's row. Without
// JavaScript the job page refreshes itself while running. Needs jobs.js first.
(function () {
  "use strict";
  var jobs = window.RefusalLabJobs;
  var running = document.getElementById("qs-progress");
  if (running && running.getAttribute("data-finished") === "0") {
    var bar = running.querySelector("progress");
    var counts = running.querySelector(".qs-counts");
    jobs.follow(running.getAttribute("data-url"), function (p) {
      bar.value = p.percent;
      counts.textContent = "round " + p.current_round + " of " + p.rounds + "; " + p.candidates +
        " candidates, " + p.accepted + " accepted by the judge; " + p.calls_used + " of " + p.budget + " calls";
    });
  }
  var table = document.getElementById("query-scenario-jobs");
  if (table) {
    var rows = Array.prototype.filter.call(table.querySelectorAll("tbody tr[data-url]"), function (row) {
      var status = row.querySelector(".status").textContent.trim().toLowerCase();
      return ["queued", "running", "judging"].indexOf(status) !== -1;
    });
    jobs.followRows(rows, function (row, p) {
      row.querySelector("progress").value = p.percent;
      row.querySelector(".status").textContent = p.status.charAt(0).toUpperCase() + p.status.slice(1);
    });
  }
})();
