// Pseudo-harmful set report: draws the prompt-length histogram from the page's JSON and, while
// a false-refusal run of the set is going, follows its progress and reloads when it is done.
// Without JavaScript the tables hold every number and the page refreshes itself. Needs jobs.js.
(function () {
  "use strict";
  var jobs = window.RefusalLabJobs;
  var running = document.getElementById("ph-frr-progress");
  if (running) {
    var bar = running.querySelector("progress");
    jobs.follow(running.getAttribute("data-url"), function (p) { bar.value = p.percent; });
  }
  jobs.drawFigures("ph-report-data");
})();
