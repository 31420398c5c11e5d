// Draws the results page's Plotly figures from the page's JSON (#results-figures), one after
// another, each in its own task, so the first chart shows before the rest are built and the
// page stays responsive. The headline, the tables and every number are in the HTML already;
// without JavaScript they are the whole page.
(function () {
  "use strict";
  var dataElement = document.getElementById("results-figures");
  if (!dataElement || typeof window.Plotly === "undefined") { return; }
  var figures = JSON.parse(dataElement.textContent) || [];
  var index = 0;

  function next() {
    if (index >= figures.length) { return; }
    var figure = figures[index++];
    var target = document.getElementById(figure.id);
    if (!target) { next(); return; }
    target.textContent = "";
    window.Plotly.newPlot(target, figure.data, figure.layout, figure.config).then(function () {
      target.setAttribute("data-drawn", "true");
      // Let the browser paint this chart before building the next one.
      window.setTimeout(next, 0);
    }, function () {
      target.textContent = "This chart could not be drawn; its numbers are in the table below.";
      window.setTimeout(next, 0);
    });
  }

  next();
})();
