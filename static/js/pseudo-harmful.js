// Pseudo-harmful pages: a running job's bars (rounds, probes, budget) follow its progress from
// PostgreSQL through the API and the page reloads when the job is finished; the job list
// follows its running rows. Without JavaScript the job page refreshes itself. Needs jobs.js.
(function () {
  "use strict";
  var jobs = window.RefusalLabJobs;
  var section = document.getElementById("ph-progress");
  if (section && section.getAttribute("data-finished") === "0") {
    var set = function (name, value, text) {
      section.querySelector("progress.ph-" + name).value = value;
      section.querySelector(".ph-" + name + "-text").textContent = text;
    };
    jobs.follow(section.getAttribute("data-url"), function (p) {
      set("rounds", p.rounds_percent, p.rounds_done + " of " + p.rounds);
      set("probes", p.probes_percent, p.probes_labelled + " of " + p.probes + " labelled");
      set("budget", p.budget_percent, p.calls_used + " of " + p.budget + " calls");
      section.querySelector(".status").textContent = "(" + p.status + ")";
    });
  }
  var rows = Array.prototype.slice.call(document.querySelectorAll("#pseudo-harmful-jobs tr[data-running]"));
  jobs.followRows(rows, function (row, p) {
    row.querySelector("progress").value = p.rounds_percent;
    row.querySelector(".ph-rounds").textContent = p.rounds_done + "/" + p.rounds;
    row.querySelector(".ph-budget").textContent = p.calls_used + "/" + p.budget;
    row.querySelector(".status").textContent = p.status;
  });
})();
