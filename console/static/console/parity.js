/* A parity report's chart (templates/admin/parity_report.html): replayed and live P&L,
 * cumulative at each close, as two step lines drawn with the vendored TradingView Lightweight
 * Charts. The points come from the canvas's data-points attribute (JSON: the page holds no
 * inline script); without JavaScript the server-drawn picture in #parity-fallback stays. */
(function () {
  "use strict";

  const COLOURS = { replay: "#1f5fa8", live: "#2a7d2a" };

  function draw(LC, points) {
    const canvas = document.getElementById("parity-canvas");
    canvas.hidden = false;
    const chart = LC.createChart(canvas, {
      autoSize: true,
      // The library's logo brings a <style> element, which the Content-Security-Policy blocks:
      // the page carries the attribution notice and link its licence asks for instead.
      layout: {
        background: { type: "solid", color: "#ffffff" }, textColor: "#333333",
        attributionLogo: false,
      },
      grid: { vertLines: { color: "#eeeeee" }, horzLines: { color: "#eeeeee" } },
      timeScale: { timeVisible: true, secondsVisible: false, borderColor: "#cccccc" },
      rightPriceScale: { borderColor: "#cccccc" },
    });
    for (const name of Object.keys(COLOURS)) {
      const series = chart.addSeries(LC.LineSeries, {
        color: COLOURS[name], lineWidth: 2, title: name, lineType: LC.LineType.WithSteps,
        priceFormat: { type: "price", precision: 2, minMove: 0.01 },
      });
      // Both start at zero a minute before the first close (as the server-drawn picture does).
      const data = [{ time: Math.floor(Date.parse(points[0].time) / 1000) - 60, value: 0 }];
      for (const point of points) {
        const time = Math.floor(Date.parse(point.time) / 1000);
        const value = Number(point[name]);
        // One value per second: a later point at the same second replaces the earlier one.
        if (data.length && data[data.length - 1].time === time) data.pop();
        data.push({ time: time, value: value });
      }
      series.setData(data);
    }
    chart.timeScale().fitContent();
    document.getElementById("parity-fallback").hidden = true;
    document.getElementById("chart-attribution").hidden = false;
  }

  document.addEventListener("DOMContentLoaded", function () {
    const canvas = document.getElementById("parity-canvas");
    const LC = window.LightweightCharts;
    if (!canvas || !LC) return;
    const points = JSON.parse(canvas.dataset.points || "[]");
    if (points.length) draw(LC, points);
  });
})();
