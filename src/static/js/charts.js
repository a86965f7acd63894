// Draws every <figure data-chart> of the page with Chart.js, from the JSON spec the page embeds beside it
// (made by src/controllers/page_charts.py). A figure with data-chart-src is zoomable at full resolution: drag
// across it (or use its buttons, or + / - / arrow keys / Escape on the focused chart) and it fetches that URL
// with ?from=&to= (epoch seconds) and redraws the window the server reduced. Reset shows the page's own spec.
// Times are epoch milliseconds drawn on a linear axis with UTC ticks (Chart.js' time axis would show the
// browser's zone under a "UTC" title).
(function () {
  "use strict";

  var PALETTE = ["#1f6feb", "#d9480f", "#2f9e44", "#ae3ec9", "#f08c00", "#0c8599", "#e64980", "#5c940d"];
  var SECOND = 1000, MINUTE = 60 * SECOND, HOUR = 60 * MINUTE, DAY = 24 * HOUR;
  var TICK_STEPS = [
    SECOND, 2 * SECOND, 5 * SECOND, 10 * SECOND, 15 * SECOND, 30 * SECOND,
    MINUTE, 2 * MINUTE, 5 * MINUTE, 10 * MINUTE, 15 * MINUTE, 30 * MINUTE,
    HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 2 * DAY, 3 * DAY, 7 * DAY, 14 * DAY, 28 * DAY, 91 * DAY, 364 * DAY
  ];
  var MIN_DRAG_PIXELS = 5;

  Chart.defaults.font.family = "system-ui, sans-serif";
  Chart.defaults.font.size = 13;

  function utcText(ms, step) {
    var iso = new Date(ms).toISOString(); // 2026-12-01T05:20:00.000Z
    if (step >= DAY) return iso.slice(0, 10);
    if (step >= MINUTE) return iso.slice(0, 10) + " " + iso.slice(11, 16);
    return iso.slice(0, 10) + " " + iso.slice(11, 19);
  }

  function tickLabel(ms, step, first) {
    var iso = new Date(ms).toISOString();
    if (step >= DAY) return iso.slice(0, 10);
    var time = step >= MINUTE ? iso.slice(11, 16) : iso.slice(11, 19);
    return first || iso.slice(11, 19) === "00:00:00" ? [time, iso.slice(0, 10)] : time;
  }

  // Ticks on whole UTC minutes, hours and days, about one per 80 pixels (at least three, for a phone).
  function utcTicks(scale) {
    var span = scale.max - scale.min;
    var wanted = Math.max(3, Math.floor(scale.width / 80));
    var step = TICK_STEPS.find(function (candidate) { return span / candidate <= wanted; }) || TICK_STEPS[TICK_STEPS.length - 1];
    var ticks = [];
    for (var at = Math.ceil(scale.min / step) * step; at <= scale.max; at += step) ticks.push({ value: at });
    scale.ticks = ticks;
    scale.$utcStep = step;
  }

  function unitSuffix(spec) {
    return spec.y_unit ? " " + spec.y_unit : "";
  }

  function formatValue(value) {
    return Number(value).toLocaleString("en", { maximumFractionDigits: 4 });
  }

  // A break (x null, from the server's with_breaks) becomes a point without a value at its neighbour's x, so
  // the line stops there (spanGaps false) and the x values stay sorted, as parsing:false requires.
  function linePoints(series) {
    var points = new Array(series.x.length), previous = null;
    for (var i = 0; i < series.x.length; i++) {
      var x = series.x[i];
      if (x === null) {
        points[i] = { x: previous === null ? series.x[i + 1] : previous, y: null };
      } else {
        points[i] = { x: x, y: series.y[i] };
        previous = x;
      }
    }
    return points;
  }

  function dataExtent(spec) {
    var low = Infinity, high = -Infinity;
    spec.series.forEach(function (series) {
      series.x.forEach(function (x) {
        if (x === null) return;
        if (x < low) low = x;
        if (x > high) high = x;
      });
    });
    return low <= high ? { from: low, to: high === low ? low + MINUTE : high } : null;
  }

  function datasets(spec) {
    return spec.series.map(function (series, index) {
      var color = series.color || PALETTE[index % PALETTE.length];
      if (spec.kind === "bar") {
        return {
          label: series.name, data: series.y, text: series.text,
          backgroundColor: series.colors || color, borderColor: series.outlines || color,
          borderWidth: series.outlines ? 3 : 0
        };
      }
      return {
        label: series.name, data: linePoints(series), borderColor: color, backgroundColor: color,
        borderWidth: 1.5, pointRadius: 0, pointHoverRadius: 3, spanGaps: false,
        stepped: series.shape === "hv" ? "before" : false
      };
    });
  }

  function labels(spec) {
    if (spec.kind !== "bar" || !spec.series.length) return undefined;
    var xs = spec.series[0].x;
    if (spec.x_type !== "date") return xs;
    var step = xs.length > 1 ? xs[1] - xs[0] : DAY;
    return xs.map(function (x, index) { return tickLabel(x, step, index === 0); });
  }

  function axisTitle(text) {
    return { display: Boolean(text), text: text || "" };
  }

  function options(spec, view) {
    var line = spec.kind !== "bar";
    var x = line
      ? {
          type: "linear", bounds: "data", min: view.from, max: view.to, title: axisTitle(spec.x_title),
          afterBuildTicks: utcTicks,
          ticks: {
            autoSkip: false, maxRotation: 0,
            callback: function (value, index) { return tickLabel(value, this.$utcStep, index === 0); }
          }
        }
      : { type: "category", stacked: Boolean(spec.stacked), title: axisTitle(spec.x_title), ticks: { maxRotation: 0 } };
    return {
      animation: false, responsive: true, maintainAspectRatio: false, normalized: true, parsing: !line,
      layout: { padding: { top: spec.series.some(function (s) { return s.text; }) ? 22 : 4 } },
      interaction: line ? { mode: "nearest", axis: "x", intersect: false } : { mode: "index", intersect: false },
      scales: {
        x: x,
        y: { beginAtZero: true, stacked: Boolean(spec.stacked), title: axisTitle(spec.y_title) }
      },
      plugins: {
        legend: { display: spec.series.length > 1, position: "top", align: "start" },
        tooltip: {
          callbacks: {
            title: function (items) {
              if (!items.length) return "";
              if (line) return utcText(items[0].parsed.x, MINUTE);
              return spec.x_type === "date" ? utcText(spec.series[0].x[items[0].dataIndex], MINUTE) : items[0].label;
            },
            label: function (item) {
              return item.dataset.label + ": " + formatValue(item.parsed.y) + unitSuffix(spec);
            }
          }
        }
      }
    };
  }

  // Chart.js has no bar labels of its own: the spec's per-bar "text" (e.g. "recommended") is drawn above each bar.
  var barTexts = {
    id: "barTexts",
    afterDatasetsDraw: function (chart) {
      var context = chart.ctx;
      chart.data.datasets.forEach(function (dataset, index) {
        if (!dataset.text || !chart.isDatasetVisible(index)) return;
        context.save();
        context.font = "600 12px system-ui, sans-serif";
        context.fillStyle = "#1f2328";
        context.textAlign = "center";
        chart.getDatasetMeta(index).data.forEach(function (bar, at) {
          var text = dataset.text[at];
          if (!text) return;
          var below = dataset.data[at] < 0;
          context.textBaseline = below ? "top" : "bottom";
          context.fillText(text, bar.x, below ? bar.y + 4 : bar.y - 4);
        });
        context.restore();
      });
    }
  };

  function markDrawn(figure, chart) {
    figure.setAttribute("data-series-drawn", String(chart.data.datasets.length));
  }

  function showProblem(figure, message) {
    var note = figure.querySelector(".chart-problem") || document.createElement("p");
    note.className = "chart-problem";
    note.setAttribute("role", "status");
    note.textContent = message;
    figure.appendChild(note);
  }

  function clearProblem(figure) {
    var note = figure.querySelector(".chart-problem");
    if (note) note.remove();
  }

  function isEmpty(spec) {
    return !spec.series.length || spec.series.every(function (s) { return !s.x.length; });
  }

  function button(toolbar, text, onClick) {
    var element = document.createElement("button");
    element.type = "button";
    element.className = "secondary";
    element.textContent = text;
    element.addEventListener("click", onClick);
    toolbar.appendChild(element);
    return element;
  }

  // Zoom: the view (epoch ms) is what the x axis shows; each change fetches that window from the server.
  function makeZoomable(figure, area, chart, pageSpec, src) {
    var pageView = dataExtent(pageSpec);
    var view = pageView;
    var pending = null;
    var toolbar = document.createElement("div");
    toolbar.className = "chart-zoom";
    toolbar.setAttribute("role", "group");
    toolbar.setAttribute("aria-label", "Zoom");
    button(toolbar, "Zoom in", function () { zoomAround(0.5); });
    button(toolbar, "Zoom out", function () { zoomAround(2); });
    var reset = button(toolbar, "Reset zoom", function () { resetZoom(); });
    reset.disabled = true;
    figure.insertBefore(toolbar, area);

    function redraw(spec, window) {
      chart.data.datasets = datasets(spec);
      chart.options.scales.x.min = window.from;
      chart.options.scales.x.max = window.to;
      chart.update("none");
      markDrawn(figure, chart);
    }

    function zoomTo(from, to) {
      if (!(to > from)) return;
      view = { from: from, to: to };
      reset.disabled = false;
      var url = new URL(src, window.location.href);
      url.searchParams.set("from", String(Math.floor(from / 1000)));
      url.searchParams.set("to", String(Math.ceil(to / 1000)));
      if (pending) pending.abort();
      var controller = (pending = new AbortController());
      fetch(url, { signal: controller.signal, headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (response) {
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.json();
        })
        .then(function (spec) {
          if (controller !== pending) return;
          clearProblem(figure);
          if (isEmpty(spec)) showProblem(figure, spec.empty_text || "No data in this window.");
          redraw(spec, { from: from, to: to });
        })
        .catch(function (error) {
          if (error.name !== "AbortError") showProblem(figure, "Could not load this window: " + error.message);
        });
    }

    function zoomAround(factor) {
      var middle = (view.from + view.to) / 2, half = ((view.to - view.from) * factor) / 2;
      zoomTo(Math.round(middle - half), Math.round(middle + half));
    }

    function pan(fraction) {
      var shift = Math.round((view.to - view.from) * fraction);
      zoomTo(view.from + shift, view.to + shift);
    }

    function resetZoom() {
      if (pending) pending.abort();
      pending = null;
      view = pageView;
      reset.disabled = true;
      clearProblem(figure);
      redraw(pageSpec, pageView);
    }

    area.tabIndex = 0;
    area.setAttribute("aria-keyshortcuts", "+ - ArrowLeft ArrowRight Escape");
    area.setAttribute("aria-label", area.getAttribute("aria-label") + ". Drag across the chart to zoom; keys: + zoom in, - zoom out, arrows move, Escape resets");
    area.addEventListener("keydown", function (event) {
      var actions = {
        "+": function () { zoomAround(0.5); }, "=": function () { zoomAround(0.5); },
        "-": function () { zoomAround(2); }, ArrowLeft: function () { pan(-0.25); },
        ArrowRight: function () { pan(0.25); }, Escape: resetZoom, "0": resetZoom
      };
      var action = actions[event.key];
      if (!action || event.altKey || event.ctrlKey || event.metaKey) return;
      event.preventDefault();
      action();
    });

    var canvas = chart.canvas, selection = document.createElement("div"), dragFrom = null;
    selection.className = "chart-selection";
    selection.hidden = true;
    area.appendChild(selection);

    function insidePlot(x) {
      return Math.min(Math.max(x, chart.chartArea.left), chart.chartArea.right);
    }
    function canvasX(event) {
      return event.clientX - canvas.getBoundingClientRect().left;
    }
    canvas.addEventListener("pointerdown", function (event) {
      var x = canvasX(event), y = event.clientY - canvas.getBoundingClientRect().top;
      var plot = chart.chartArea;
      if (event.button !== 0 || x < plot.left || x > plot.right || y < plot.top || y > plot.bottom) return;
      dragFrom = x;
      canvas.setPointerCapture(event.pointerId);
      selection.style.top = plot.top + "px";
      selection.style.height = plot.bottom - plot.top + "px";
    });
    canvas.addEventListener("pointermove", function (event) {
      if (dragFrom === null) return;
      var x = insidePlot(canvasX(event));
      selection.style.left = Math.min(dragFrom, x) + "px";
      selection.style.width = Math.abs(x - dragFrom) + "px";
      selection.hidden = false;
    });
    function endDrag(event) {
      if (dragFrom === null) return;
      var from = dragFrom, to = insidePlot(canvasX(event));
      dragFrom = null;
      selection.hidden = true;
      if (event.type !== "pointerup" || Math.abs(to - from) < MIN_DRAG_PIXELS) return;
      var scale = chart.scales.x;
      zoomTo(Math.round(scale.getValueForPixel(Math.min(from, to))), Math.round(scale.getValueForPixel(Math.max(from, to))));
    }
    canvas.addEventListener("pointerup", endDrag);
    canvas.addEventListener("pointercancel", endDrag);
    canvas.addEventListener("dblclick", resetZoom);
  }

  function draw(figure) {
    var id = figure.getAttribute("data-chart");
    var area = document.getElementById(id + "-area");
    var spec = JSON.parse(document.getElementById(id + "-data").textContent);
    if (isEmpty(spec)) {
      figure.setAttribute("data-series-drawn", "0");
      showProblem(figure, spec.empty_text || "No data in this window.");
      return;
    }
    var canvas = document.createElement("canvas");
    area.appendChild(canvas);
    var view = spec.kind === "bar" ? {} : dataExtent(spec);
    var chart = new Chart(canvas, {
      type: spec.kind === "bar" ? "bar" : "line",
      data: { labels: labels(spec), datasets: datasets(spec) },
      options: options(spec, view),
      plugins: [barTexts]
    });
    markDrawn(figure, chart); // animation is off: the constructor has drawn the chart
    var src = figure.getAttribute("data-chart-src");
    if (src && spec.zoomable) {
      figure.classList.add("chart-zoomable");
      makeZoomable(figure, area, chart, spec, src);
    }
  }

  function drawAll() {
    document.querySelectorAll("figure[data-chart]").forEach(function (figure) {
      try {
        draw(figure);
      } catch (error) {
        showProblem(figure, "Could not draw this chart: " + error.message);
        console.error(error); // eslint-disable-line no-console -- the other charts still draw
      }
    });
    // A User Timing mark just before the frame that shows the charts (bench/pages_bench.py reads it).
    window.requestAnimationFrame(function () { performance.mark("charts-drawn"); });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", drawAll);
  else drawAll();
})();
