/* A pair's interactive chart (templates/admin/marketdata/pair/chart.html), drawn with the vendored
 * TradingView Lightweight Charts: candles and volume, signals and trade entries and exits as
 * markers, the stop loss and take profit of open trades as price lines, and the QFH metrics in a
 * second pane on the same time scale. Zoom with the wheel, pan by dragging, read values under
 * the crosshair. Its data comes from the page's JSON endpoint (admin:marketdata_pair_chart_data);
 * a window without an end is asked for again every few seconds and extends as candles close.
 * Without JavaScript the server-drawn pictures in #chart-fallback stay. */
(function () {
  "use strict";

  const UP = "#2a7d2a";
  const DOWN = "#b03030";
  const METRICS = { coherence: "#1f5fa8", stability: "#d08a00", entropy: "#7a3fa0" };
  const PERIOD = { M1: 60, M5: 300, M15: 900, H1: 3600 };

  function label(seconds) {
    return new Date(seconds * 1000).toISOString().slice(0, 16).replace("T", " ") + "Z";
  }

  function start(root, LC) {
    const container = document.getElementById("chart-canvas");
    const legend = document.getElementById("chart-legend");
    const chart = LC.createChart(container, {
      autoSize: true,
      // The library's own logo brings a <style> element, which the Content-Security-Policy
      // blocks: the page carries the attribution and the link its licence asks for instead.
      layout: {
        background: { type: "solid", color: "#ffffff" }, textColor: "#333333",
        attributionLogo: false,
      },
      grid: { vertLines: { color: "#eeeeee" }, horzLines: { color: "#eeeeee" } },
      crosshair: { mode: LC.CrosshairMode.Normal },
      timeScale: { timeVisible: true, secondsVisible: false, borderColor: "#cccccc" },
      rightPriceScale: { borderColor: "#cccccc" },
    });
    const candles = chart.addSeries(LC.CandlestickSeries, {
      upColor: UP, downColor: DOWN, borderVisible: false, wickUpColor: UP, wickDownColor: DOWN,
    });
    const volume = chart.addSeries(LC.HistogramSeries, {
      priceFormat: { type: "volume" }, priceScaleId: "volume", lastValueVisible: false,
      priceLineVisible: false,
    });
    volume.priceScale().applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
    const metrics = {};
    for (const name of Object.keys(METRICS)) {
      metrics[name] = chart.addSeries(LC.LineSeries, {
        color: METRICS[name], lineWidth: 1, title: name, priceLineVisible: false,
        priceFormat: { type: "price", precision: 3, minMove: 0.001 },
      }, 1);
    }
    chart.panes()[1].setHeight(140);
    const markers = LC.createSeriesMarkers(candles, []);
    const state = {
      chart: chart, candles: candles, volume: volume, metrics: metrics, markers: markers,
      priceLines: [], lastCandle: 0, lastMetric: 0, digits: 5, period: 60, updates: 0,
    };

    chart.subscribeCrosshairMove(function (param) {
      const bar = param.time !== undefined && param.seriesData.get(candles);
      if (!bar) return;
      const price = function (value) { return value.toFixed(state.digits); };
      const parts = [label(bar.time), "O " + price(bar.open), "H " + price(bar.high),
        "L " + price(bar.low), "C " + price(bar.close)];
      const traded = param.seriesData.get(volume);
      if (traded) parts.push("V " + traded.value);
      for (const name of Object.keys(metrics)) {
        const point = param.seriesData.get(metrics[name]);
        if (point) parts.push(name + " " + point.value.toPrecision(4));
      }
      legend.textContent = parts.join("  ");
    });
    return state;
  }

  function snap(state, seconds) {
    return Math.floor(seconds / state.period) * state.period;
  }

  function marks(state, data) {
    const list = [];
    for (const signal of data.signals) {
      const buy = signal.direction === "BUY";
      list.push({
        time: snap(state, signal.time), position: buy ? "belowBar" : "aboveBar",
        shape: buy ? "arrowUp" : "arrowDown", color: buy ? UP : DOWN,
        text: signal.direction + " " + signal.confidence.toPrecision(3),
      });
    }
    for (const trade of data.trades) {
      const long = trade.units > 0;
      list.push({
        time: snap(state, trade.opened_at), position: long ? "belowBar" : "aboveBar",
        shape: "circle", color: "#1f5fa8", text: "#" + trade.id + " in",
      });
      if (trade.closed_at !== null) {
        list.push({
          time: snap(state, trade.closed_at), position: long ? "aboveBar" : "belowBar",
          shape: "square", color: "#1f5fa8", text: "#" + trade.id + " out",
        });
      }
    }
    list.sort(function (a, b) { return a.time - b.time; });
    state.markers.setMarkers(list);
  }

  function priceLines(state, data, LC) {
    for (const line of state.priceLines) state.candles.removePriceLine(line);
    state.priceLines = [];
    for (const trade of data.trades) {
      if (trade.closed_at !== null) continue;
      for (const [kind, value, colour] of [["SL", trade.stop_loss, DOWN], ["TP", trade.take_profit, UP]]) {
        if (value === null) continue;
        state.priceLines.push(state.candles.createPriceLine({
          price: value, color: colour, lineWidth: 1, lineStyle: LC.LineStyle.Dashed,
          axisLabelVisible: true, title: kind + " #" + trade.id,
        }));
      }
    }
  }

  function apply(state, data, LC, first) {
    state.digits = data.digits;
    state.period = PERIOD[data.timeframe] || 60;
    const bars = data.candles.map(function (c) {
      return { time: c.time, open: c.open, high: c.high, low: c.low, close: c.close };
    });
    const volumes = data.candles.map(function (c) {
      return { time: c.time, value: c.volume, color: c.close >= c.open ? "#2a7d2a55" : "#b0303055" };
    });
    if (first) {
      const minMove = Math.pow(10, -data.digits);
      state.candles.applyOptions({ priceFormat: { type: "price", precision: data.digits, minMove: minMove } });
      state.candles.setData(bars);
      state.volume.setData(volumes);
    } else {
      // Only what is new or still forming: the operator's zoom and scroll stay where they are.
      bars.forEach(function (bar, index) {
        if (bar.time >= state.lastCandle) {
          state.candles.update(bar);
          state.volume.update(volumes[index]);
        }
      });
    }
    if (bars.length) state.lastCandle = bars[bars.length - 1].time;
    for (const name of Object.keys(state.metrics)) {
      const points = data.metrics.map(function (m) { return { time: m.time, value: m[name] }; });
      if (first) state.metrics[name].setData(points);
      else points.filter(function (p) { return p.time >= state.lastMetric; })
        .forEach(function (p) { state.metrics[name].update(p); });
    }
    if (data.metrics.length) state.lastMetric = data.metrics[data.metrics.length - 1].time;
    marks(state, data);
    priceLines(state, data, LC);
    if (first) state.chart.timeScale().fitContent();
    state.updates += 1;
    state.data = data;
  }

  function load(root, state, LC, first) {
    return fetch(root.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (response.redirected || !response.ok) {
          throw new Error("the server answered " + response.status);
        }
        return response.json();
      })
      .then(function (data) {
        apply(state, data, LC, first);
        if (window.consoleLive) window.consoleLive.ok();
      })
      .catch(function (error) {
        if (window.consoleLive) window.consoleLive.lost(error.message || "the server cannot be reached");
        throw error;
      });
  }

  function ready() {
    const root = document.getElementById("live-chart");
    const LC = window.LightweightCharts;
    if (!root || !LC) return;
    root.hidden = false;
    const state = start(root, LC);
    // For the browser tests and the curious: the chart and its series, through the library's API.
    window.consoleChart = state;
    load(root, state, LC, true).then(function () {
      document.getElementById("chart-fallback").hidden = true;
      if (root.dataset.follow === "true") {
        const every = Number(root.dataset.refreshSeconds || "5") * 1000;
        window.setInterval(function () { load(root, state, LC, false).catch(function () {}); }, every);
      }
    }, function () { root.hidden = true; });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", ready);
  else ready();
})();
