// Polls running exports (progress lives in PostgreSQL) and reloads once all have finished.
// Without JavaScript the page refreshes itself instead (<noscript> meta refresh).
(function () {
  "use strict";
  var rows = Array.prototype.slice.call(document.querySelectorAll("tr[data-export][data-finished='0']"));
  if (!rows.length) { return; }
  function poll() {
    Promise.all(rows.map(function (row) {
      return fetch(row.getAttribute("data-url"), { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (job) {
          if (!job) { return false; }
          row.querySelector("progress").value = job.percent;
          row.querySelector(".export-rows").textContent = job.rows_done + "/" + job.rows_total + " rows";
          row.querySelector(".export-status").textContent = job.status;
          return job.status !== "queued" && job.status !== "running";
        });
    })).then(function (finished) {
      if (finished.every(Boolean)) { window.location.reload(); } else { setTimeout(poll, 1500); }
    }, function () { setTimeout(poll, 5000); });
  }
  setTimeout(poll, 1500);
})();
