// Polls running generation jobs (progress lives in PostgreSQL) and reloads once all finish.
(function () {
  "use strict";
  var rows = Array.prototype.slice.call(document.querySelectorAll("tr[data-job][data-finished='0']"));
  if (!rows.length) { return; }
  function poll() {
    Promise.all(rows.map(function (row) {
      return fetch("/api/generation-jobs/" + row.getAttribute("data-job") + "/", { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (job) {
          if (!job) { return false; }
          var p = job.progress;
          row.querySelector("progress").value = p.percent;
          row.querySelector(".job-counts").textContent = p.done + "/" + p.total + " done" + (p.failed ? ", " + p.failed + " failed" : "");
          row.querySelector(".job-status .status").textContent = p.status;
          return p.finished;
        });
    })).then(function (finished) {
      if (finished.every(Boolean)) { window.location.reload(); } else { setTimeout(poll, 2000); }
    }, function () { setTimeout(poll, 5000); });
  }
  setTimeout(poll, 2000);
})();
