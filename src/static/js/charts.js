// Draws every <figure data-chart> of the page with Plotly, from the JSON spec the page embeds beside it
// (made by src/controllers/page_charts.py). A figure with data-chart-src is zoomable at full resolution:
// after a zoom it fetches that URL with ?from=&to= (epoch seconds) and redraws the window the server reduced.
(function () {
  "use strict";

  var PALETTE = ["#1f6feb", "#d9480f", "#2f9e44", "#ae3ec9", "#f08c00", "#0c8599", "#e64980", "#5c940d"];

  function traces(spec) {
    return spec.series.map(function (series, index) {
      var color = series.color || PALETTE[index % PALETTE.length];
      if (spec.kind === "bar") {
        return {
          type: "bar", name: series.name, x: series.x, y: series.y,
          text: series.text, textposition: series.text ? "outside" : undefined, cliponaxis: false,
          marker: { color: series.colors || color, line: { color: series.outlines || color, width: series.outlines ? 3 : 0 } },
          hovertemplate: "%{x}: %{y:.4~f}" + (spec.y_unit ? " " + spec.y_unit : "") + "<extra>" + series.name + "</extra>"
        };
      }
      return {
        type: "scatter", mode: series.mode || "lines", name: series.name, x: series.x, y: series.y,
        line: { color: color, width: 1.5, shape: series.shape || "linear" },
        connectgaps: false,
        hovertemplate: "%{x}: %{y:.4~f}" + (spec.y_unit ? " " + spec.y_unit : "") + "<extra>" + series.name + "</extra>"
      };
    });
  }

  function layout(spec) {
    return {
      margin: { l: 56, r: 16, t: spec.series.length > 1 ? 32 : 8, b: 48 },
      // "relative" stacks negative values (energy returned) below the axis and positive ones above it.
      barmode: spec.stacked ? "relative" : "group",
      showlegend: spec.series.length > 1,
      legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" },
      xaxis: { title: { text: spec.x_title || "" }, type: spec.x_type || "-", automargin: true, fixedrange: !spec.zoomable },
      yaxis: { title: { text: spec.y_title || "" }, rangemode: "tozero", automargin: true, fixedrange: true, zeroline: true },
      font: { family: "system-ui, sans-serif", size: 13 },
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
      annotations: spec.annotations || []
    };
  }

  var CONFIG = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["select2d", "lasso2d"] };

  function markDrawn(figure, area) {
    figure.setAttribute("data-series-drawn", String(area.data.length));
  }

  function showProblem(figure, message) {
    var note = figure.querySelector(".chart-problem") || document.createElement("p");
    note.className = "chart-problem";
    note.setAttribute("role", "status");
    note.textContent = message;
    figure.appendChild(note);
  }

  function epochSeconds(value) {
    if (typeof value === "number") return Math.round(value / 1000);
    // Plotly reports a date axis range as "YYYY-MM-DD HH:MM:SS.sss" in the axis' time, which is UTC here.
    return Math.round(Date.parse(String(value).replace(" ", "T") + "Z") / 1000);
  }

  function followZoom(figure, area, src) {
    var pending = null;
    area.on("plotly_relayout", function (change) {
      var from = change["xaxis.range[0]"], to = change["xaxis.range[1]"];
      var url = new URL(src, window.location.href);
      if (from !== undefined && to !== undefined) {
        url.searchParams.set("from", String(epochSeconds(from)));
        url.searchParams.set("to", String(epochSeconds(to)));
      } else if (!change["xaxis.autorange"]) {
        return;
      }
      if (pending) pending.abort();
      pending = new AbortController();
      fetch(url, { signal: pending.signal, headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (response) {
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.json();
        })
        .then(function (spec) {
          var view = layout(spec);
          if (from !== undefined) view.xaxis.range = [from, to];
          return Plotly.react(area, traces(spec), view, CONFIG);
        })
        .then(function () { markDrawn(figure, area); })
        .catch(function (error) {
          if (error.name !== "AbortError") showProblem(figure, "Could not load this window: " + error.message);
        });
    });
  }

  function draw(figure) {
    var id = figure.getAttribute("data-chart");
    var area = document.getElementById(id + "-area");
    var spec = JSON.parse(document.getElementById(id + "-data").textContent);
    if (!spec.series.length || spec.series.every(function (s) { return !s.x.length; })) {
      figure.setAttribute("data-series-drawn", "0");
      showProblem(figure, spec.empty_text || "No data in this window.");
      return;
    }
    Plotly.newPlot(area, traces(spec), layout(spec), CONFIG).then(function () {
      markDrawn(figure, area);
      var src = figure.getAttribute("data-chart-src");
      if (src && spec.zoomable) followZoom(figure, area, src);
    });
  }

  function drawAll() {
    document.querySelectorAll("figure[data-chart]").forEach(draw);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", drawAll);
  else drawAll();
})();
