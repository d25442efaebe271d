// Draws the Plotly charts the server built (metrics/charts.py). A page marks each chart's place
// with data-chart="<id>", the id of a json_script holding {data, layout, config}: the figures
// stay in the page as data, never as inline script, and the page works under a strict CSP.
(function () {
  "use strict";
  if (!window.Plotly) { return; }  // plotly.js failed to load: keep the server's fallback text

  // Only same-site paths: "//host" and "/\host" are other sites to a browser, and a drill-down
  // link must never leave the dashboard.
  function drillTarget(point) {
    var url = point && point.customdata;
    if (typeof url !== "string" || url.charAt(0) !== "/") { return null; }
    var next = url.charAt(1);
    return next === "/" || next === "\\" ? null : url;
  }

  function draw(el) {
    var source = document.getElementById(el.getAttribute("data-chart"));
    if (!source) { return; }
    var spec;
    try {
      spec = JSON.parse(source.textContent);
    } catch (error) {
      console.error("Chart " + source.id + " has no valid figure", error);
      return;
    }
    Plotly.newPlot(el, spec.data, spec.layout, spec.config).then(function () {
      // Plotly's drag layer sets its own cursor, so the hand has to be set on it while the
      // pointer is over a point that leads somewhere.
      var dragLayer = el.querySelector(".nsewdrag");
      el.on("plotly_hover", function (event) {
        if (dragLayer) { dragLayer.style.cursor = drillTarget(event.points[0]) ? "pointer" : ""; }
      });
      el.on("plotly_unhover", function () {
        if (dragLayer) { dragLayer.style.cursor = ""; }
      });
      el.on("plotly_click", function (event) {
        var url = drillTarget(event.points[0]);
        if (url) { window.location.assign(url); }
      });
      // Lets browser tests and the meeting page wait for a drawn chart, not a timeout.
      el.setAttribute("data-chart-ready", "1");
    });
  }

  var charts = Array.prototype.slice.call(document.querySelectorAll("[data-chart]"));
  charts.forEach(draw);

  function resize(el) {
    // A chart in a hidden section (the meeting page shows one at a time) has no size to take;
    // it is resized again when its section is shown.
    if (el.offsetParent === null || !el.classList.contains("js-plotly-plot")) { return; }
    Plotly.Plots.resize(el).catch(function () {});
  }

  if (window.ResizeObserver) {
    // Watching the element catches window resizes and also a section or sidebar changing its
    // size, which no window event reports.
    var observer = new ResizeObserver(function (entries) {
      entries.forEach(function (entry) { resize(entry.target); });
    });
    charts.forEach(function (el) { observer.observe(el); });
  } else {
    var pending = null;
    window.addEventListener("resize", function () {
      // Once per burst of resize events: a relayout per event makes dragging a window stutter.
      clearTimeout(pending);
      pending = setTimeout(function () { charts.forEach(resize); }, 150);
    });
  }
})();
