// Draws the study dashboard's Plotly figures from the page's JSON and refreshes them, with
// the tables beside them, every 15 seconds. Without JavaScript the tables carry every number.
(function () {
  "use strict";
  var section = document.getElementById("dashboard");
  var dataElement = document.getElementById("dashboard-data");
  if (!section || !dataElement || typeof window.Plotly === "undefined") { return; }
  var payload = JSON.parse(dataElement.textContent);
  if (!payload) { return; }
  var REFRESH_MS = 15000;
  var config = { responsive: true, displaylogo: false };
  var container = section.querySelector(".dashboard-figures");

  function draw(figures) {
    Object.keys(figures).forEach(function (name) {
      var target = section.querySelector("[data-figure='" + name + "']");
      if (target) { window.Plotly.react(target, figures[name].data, figures[name].layout, config); }
    });
  }

  function refresh() {
    if (document.hidden) { setTimeout(refresh, REFRESH_MS); return; }
    fetch(payload.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (data) {
          draw(data.figures);
          // Our own server-rendered, escaped table markup for the same numbers.
          document.getElementById("dashboard-tables").innerHTML = data.tables_html;
          var updated = document.getElementById("dashboard-updated");
          if (updated) {
            updated.setAttribute("datetime", data.numbers.generated_at);
            updated.textContent = data.numbers.generated_at.slice(0, 19);
          }
        }
        setTimeout(refresh, REFRESH_MS);
      }, function () { setTimeout(refresh, REFRESH_MS * 2); });
  }

  container.hidden = false;
  draw(payload.figures);
  setTimeout(refresh, REFRESH_MS);
})();
