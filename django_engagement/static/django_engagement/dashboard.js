/*
 * django-engagement admin dashboard: small SVG charts, no dependencies, no network.
 *
 * Reads the data embedded by the page ({{ dashboard|json_script:"engagement-dashboard-data" }})
 * and draws every <figure data-chart="line|bar"> in it:
 *   line: data-source (list key), data-series (space-separated value keys),
 *         data-label-<key> (series label shown in the tooltip)
 *   bar:  data-source, data-label (row key shown as the bar label), data-title (row key
 *         added to the tooltip), data-value, data-empty
 * and the sparkline of every <svg data-spark="<kpi>"> from data.kpis[<kpi>].series.
 * A row's link to the filtered event changelist is row.links[<series key>] (line) or
 * row.url (bar): points and bars are SVG links, and a click on a line chart follows the
 * link of the point nearest to the pointer. <select data-exclusive="<id>"> clears the
 * other select when chosen (a target or a group, never both).
 * Colours come from the admin's CSS variables (dashboard.css), so light and
 * dark themes both work. Charts are redrawn when their container is resized.
 */
(function () {
  "use strict";

  var SVG_NS = "http://www.w3.org/2000/svg";
  var LOCALE = document.documentElement.lang || undefined;

  function svg(name, attrs, parent) {
    var node = document.createElementNS(SVG_NS, name);
    Object.keys(attrs || {}).forEach(function (key) {
      node.setAttribute(key, attrs[key]);
    });
    if (parent) {
      parent.appendChild(node);
    }
    return node;
  }

  function svgText(parent, content, attrs) {
    var node = svg("text", attrs, parent);
    node.textContent = content;
    return node;
  }

  /* A native tooltip (and accessible name) for one SVG element. */
  function titled(node, content) {
    var title = svg("title");
    title.textContent = content;
    node.insertBefore(title, node.firstChild);
    return node;
  }

  function formatNumber(value) {
    return Number(value).toLocaleString(LOCALE);
  }

  function parseDay(iso) {
    var parts = iso.split("-");
    return new Date(Number(parts[0]), Number(parts[1]) - 1, Number(parts[2]));
  }

  var DAY_FORMATS = {
    full: { year: "numeric", month: "short", day: "numeric" },
    day: { month: "short", day: "numeric" },
    month: { year: "numeric", month: "short" },
  };

  function formatDay(iso, format) {
    return parseDay(iso).toLocaleDateString(LOCALE, DAY_FORMATS[format]);
  }

  /* A y axis from 0 with about `ticks` round integer steps covering `max`. */
  function niceScale(max, ticks) {
    if (max <= 0) {
      return { max: ticks, step: 1 };
    }
    var raw = max / ticks;
    var magnitude = Math.pow(10, Math.floor(Math.log10(raw)));
    var normal = raw / magnitude;
    var step = (normal <= 1 ? 1 : normal <= 2 ? 2 : normal <= 5 ? 5 : 10) * magnitude;
    step = Math.max(1, Math.round(step));
    return { max: Math.ceil(max / step) * step, step: step };
  }

  function truncate(label, maxChars) {
    return label.length > maxChars ? label.slice(0, Math.max(1, maxChars - 1)) + "\u2026" : label;
  }

  function lineChart(figure, canvas, rows) {
    var keys = figure.dataset.series.split(/\s+/);
    var labels = keys.map(function (key) {
      return figure.dataset["label" + key.charAt(0).toUpperCase() + key.slice(1)] || key;
    });
    var width = Math.max(canvas.clientWidth, 280);
    var height = 240;
    var margin = { top: 14, right: 18, bottom: 30, left: 46 };
    var plotWidth = width - margin.left - margin.right;
    var plotHeight = height - margin.top - margin.bottom;
    var count = rows.length;
    var highest = 0;
    rows.forEach(function (row) {
      keys.forEach(function (key) {
        highest = Math.max(highest, row[key]);
      });
    });
    var scale = niceScale(highest, 4);
    /* Past three months points are too dense to draw; they stay for tooltips and tests. */
    var dense = count > 92;

    function x(index) {
      return margin.left + (count === 1 ? plotWidth / 2 : (index * plotWidth) / (count - 1));
    }
    function y(value) {
      return margin.top + plotHeight - (value / scale.max) * plotHeight;
    }

    var root = svg("svg", {
      class: dense ? "ed-svg ed-dense" : "ed-svg",
      width: width,
      height: height,
      viewBox: "0 0 " + width + " " + height,
      role: "img",
      tabindex: "0",
      "aria-labelledby": canvas.getAttribute("aria-labelledby"),
    });
    var axis = svg("g", { class: "ed-axis" }, root);
    for (var tick = 0; tick <= scale.max; tick += scale.step) {
      svg("line", { class: "ed-grid-line", x1: margin.left, x2: width - margin.right, y1: y(tick), y2: y(tick) }, axis);
      svgText(axis, formatNumber(tick), { x: margin.left - 8, y: y(tick), dy: "0.32em", "text-anchor": "end" });
    }
    var labelCount = Math.min(count, Math.max(2, Math.floor(plotWidth / 96)));
    var seen = {};
    for (var k = 0; k < labelCount; k++) {
      var index = labelCount === 1 ? 0 : Math.round((k * (count - 1)) / (labelCount - 1));
      if (seen[index]) {
        continue;
      }
      seen[index] = true;
      var anchor = index === 0 ? "start" : index === count - 1 ? "end" : "middle";
      svgText(axis, formatDay(rows[index].date, dense ? "month" : "day"), {
        x: x(index), y: height - 8, "text-anchor": count === 1 ? "middle" : anchor,
      });
    }

    var radius = count <= 31 ? 3.5 : 2.25;
    keys.forEach(function (key, seriesIndex) {
      var series = svg("g", { class: "ed-series ed-series-" + seriesIndex, "data-series": key }, root);
      var points = rows.map(function (row, index) {
        return x(index).toFixed(1) + "," + y(row[key]).toFixed(1);
      });
      if (keys.length === 1 && count > 1) {
        svg("path", {
          class: "ed-area",
          d: "M" + x(0) + "," + y(0) + "L" + points.join("L") + "L" + x(count - 1) + "," + y(0) + "Z",
        }, series);
      }
      svg("path", { class: "ed-line", d: "M" + points.join("L") }, series);
      rows.forEach(function (row, index) {
        var href = row.links && row.links[key];
        var parent = href ? svg("a", { href: href, class: "ed-point-link" }, series) : series;
        titled(
          svg("circle", { class: "ed-point", cx: x(index), cy: y(row[key]), r: radius, "data-date": row.date }, parent),
          formatDay(row.date, "full") + " \u2014 " + labels[seriesIndex] + ": " + formatNumber(row[key])
        );
      });
    });

    /* Hover and keyboard focus: a guide line and a tooltip for the nearest day. */
    var guide = svg("line", { class: "ed-guide", y1: margin.top, y2: margin.top + plotHeight, visibility: "hidden" }, root);
    var overlay = svg("rect", { class: "ed-overlay", x: margin.left, y: margin.top, width: plotWidth, height: plotHeight }, root);
    var tooltip = document.createElement("div");
    tooltip.className = "ed-tooltip";
    tooltip.hidden = true;
    var current = -1;

    function show(index) {
      current = Math.max(0, Math.min(count - 1, index));
      var row = rows[current];
      guide.setAttribute("x1", x(current));
      guide.setAttribute("x2", x(current));
      guide.setAttribute("visibility", "visible");
      tooltip.replaceChildren();
      var heading = document.createElement("strong");
      heading.textContent = formatDay(row.date, "full");
      tooltip.appendChild(heading);
      keys.forEach(function (key, seriesIndex) {
        var line = document.createElement("span");
        line.className = "ed-tooltip-row ed-series-" + seriesIndex;
        line.textContent = labels[seriesIndex] + ": " + formatNumber(row[key]);
        tooltip.appendChild(line);
      });
      tooltip.hidden = false;
      var left = x(current) + 12;
      if (left + tooltip.offsetWidth > width) {
        left = x(current) - tooltip.offsetWidth - 12;
      }
      tooltip.style.left = Math.max(0, left) + "px";
      tooltip.style.top = margin.top + "px";
    }
    function hide() {
      current = -1;
      guide.setAttribute("visibility", "hidden");
      tooltip.hidden = true;
    }
    overlay.addEventListener("pointermove", function (event) {
      var box = root.getBoundingClientRect();
      var position = ((event.clientX - box.left) * width) / box.width - margin.left;
      show(count === 1 ? 0 : Math.round((position / plotWidth) * (count - 1)));
    });
    overlay.addEventListener("pointerleave", hide);
    /* The overlay covers the points: a click follows the nearest point's link. */
    overlay.addEventListener("click", function (event) {
      if (current < 0) {
        return;
      }
      var box = root.getBoundingClientRect();
      var pointerY = ((event.clientY - box.top) * height) / box.height;
      var row = rows[current];
      var best = null;
      keys.forEach(function (key) {
        var distance = Math.abs(y(row[key]) - pointerY);
        if (row.links && row.links[key] && (best === null || distance < best.distance)) {
          best = { distance: distance, href: row.links[key] };
        }
      });
      if (best) {
        window.location.assign(best.href);
      }
    });
    overlay.style.cursor = rows.some(function (row) { return row.links; }) ? "pointer" : "";
    root.addEventListener("blur", hide);
    root.addEventListener("keydown", function (event) {
      var moves = { ArrowLeft: -1, ArrowRight: 1, Home: -count, End: count };
      if (event.key in moves) {
        event.preventDefault();
        show((current < 0 ? count - 1 : current) + moves[event.key]);
      } else if (event.key === "Escape") {
        hide();
      }
    });

    canvas.replaceChildren(root, tooltip);
  }

  function barChart(figure, canvas, rows) {
    var labelKey = figure.dataset.label;
    var valueKey = figure.dataset.value;
    var titleKey = figure.dataset.title;
    if (!rows.length) {
      var empty = document.createElement("p");
      empty.className = "ed-empty";
      empty.textContent = figure.dataset.empty || "";
      canvas.replaceChildren(empty);
      return;
    }
    var width = Math.max(canvas.clientWidth, 280);
    var rowHeight = 28;
    var barHeight = 18;
    var labelWidth = Math.min(180, Math.round(width * 0.38));
    var valueWidth = 56;
    var barSpace = width - labelWidth - valueWidth - 12;
    var height = rows.length * rowHeight + 4;
    var highest = Math.max.apply(null, rows.map(function (row) { return row[valueKey]; }));
    var maxChars = Math.max(4, Math.floor(labelWidth / 7.2));

    var root = svg("svg", {
      class: "ed-svg",
      width: width,
      height: height,
      viewBox: "0 0 " + width + " " + height,
      role: "img",
      "aria-labelledby": canvas.getAttribute("aria-labelledby"),
    });
    rows.forEach(function (row, index) {
      var label = String(row[labelKey]);
      var value = row[valueKey];
      var top = index * rowHeight + 2;
      var code = titleKey ? String(row[titleKey]) : "";
      var parent = row.url ? svg("a", { href: row.url, class: "ed-bar-link" }, root) : root;
      var group = titled(
        svg("g", { class: "ed-bar-row", "data-code": code }, parent),
        (code && code !== label ? label + " (" + code + ")" : label) + ": " + formatNumber(value)
      );
      svgText(group, truncate(label, maxChars), {
        class: "ed-bar-label", x: labelWidth - 8, y: top + rowHeight / 2, dy: "0.32em", "text-anchor": "end",
      });
      var barWidth = highest ? Math.max(2, (value / highest) * barSpace) : 0;
      svg("rect", {
        class: "ed-bar", x: labelWidth, y: top + (rowHeight - barHeight) / 2,
        width: barWidth.toFixed(1), height: barHeight, rx: 2,
      }, group);
      svgText(group, formatNumber(value), {
        class: "ed-bar-value", x: labelWidth + barWidth + 6, y: top + rowHeight / 2, dy: "0.32em",
      });
    });
    canvas.replaceChildren(root);
  }

  var CHARTS = { line: lineChart, bar: barChart };

  /* A KPI tile's sparkline: the period's per-day values as one small line. */
  function sparkline(node, values) {
    var width = 120;
    var height = 28;
    var highest = Math.max.apply(null, values.concat([1]));
    var step = values.length > 1 ? width / (values.length - 1) : 0;
    var points = values.map(function (value, index) {
      return (values.length > 1 ? index * step : width / 2).toFixed(1) + "," + (height - 2 - (value / highest) * (height - 4)).toFixed(1);
    });
    node.setAttribute("viewBox", "0 0 " + width + " " + height);
    node.setAttribute("preserveAspectRatio", "none");
    node.replaceChildren();
    svg("polyline", { class: "ed-spark-line", points: points.join(" "), "data-points": values.length }, node);
  }

  function drawAll(data) {
    document.querySelectorAll("figure[data-chart]").forEach(function (figure) {
      var canvas = figure.querySelector(".ed-canvas");
      var draw = CHARTS[figure.dataset.chart];
      var rows = data[figure.dataset.source] || [];
      var lastWidth = -1;
      function render() {
        if (canvas.clientWidth !== lastWidth) {
          lastWidth = canvas.clientWidth;
          draw(figure, canvas, rows);
        }
      }
      render();
      if (window.ResizeObserver) {
        new ResizeObserver(function () {
          window.requestAnimationFrame(render);
        }).observe(canvas);
      }
    });
    document.querySelectorAll("svg[data-spark]").forEach(function (node) {
      var kpi = data.kpis && data.kpis[node.dataset.spark];
      if (kpi) {
        sparkline(node, kpi.series);
      }
    });
    document.querySelectorAll("select[data-exclusive]").forEach(function (select) {
      select.addEventListener("change", function () {
        var other = document.getElementById(select.dataset.exclusive);
        if (select.value && other) {
          other.value = "";
        }
      });
    });
    /* Set through the CSSOM, which a Content Security Policy without 'unsafe-inline' allows. */
    document.querySelectorAll("[data-heat]").forEach(function (cell) {
      cell.style.setProperty("--ed-heat", cell.dataset.heat);
    });
    document.querySelectorAll(".ed-meter-fill[data-value]").forEach(function (fill) {
      var max = Number(fill.dataset.max);
      fill.style.width = (max ? (100 * Number(fill.dataset.value)) / max : 0) + "%";
    });
    /* Tiles, top lists and data tables group thousands alike (1,234), in the page's locale. */
    document.querySelectorAll("[data-total], [data-number]").forEach(function (node) {
      node.textContent = formatNumber(node.textContent);
    });
  }

  function start() {
    var source = document.getElementById("engagement-dashboard-data");
    if (source) {
      drawAll(JSON.parse(source.textContent));
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
