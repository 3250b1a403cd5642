/* forktrace HTML report: draws what scales with the number of spans (swimlanes,
 * fork trees, the tool-call list, the details panel) from the one JSON document
 * embedded in the page. Charts are Apache ECharts on canvas, so a run of 10,000
 * spans is 10,000 rectangles on a canvas, not 10,000 DOM nodes. The document's
 * shape is described in forktrace/collector/report/data.py. */
(function () {
  "use strict";

  var doc = JSON.parse(document.getElementById("forktrace-data").textContent);
  var ACTIVITY = doc.activities; // ["thinking", "tool", "waiting", "done", "failed"]
  var css = getComputedStyle(document.documentElement);
  function colour(name) { return css.getPropertyValue("--" + name).trim() || "#888"; }
  var ACTIVITY_COLOUR = ACTIVITY.map(colour);
  var WAITING = ACTIVITY.indexOf("waiting");
  var DONE = ACTIVITY.indexOf("done");
  var FAILED = ACTIVITY.indexOf("failed");
  var TOOL_PAGE = 50;
  var charts = [];

  // ---- formatting --------------------------------------------------------

  function ms(value) {
    if (value === null || value === undefined) return "";
    if (value < 1000) return value.toFixed(0) + " ms";
    if (value < 60000) return (value / 1000).toFixed(value < 10000 ? 2 : 1) + " s";
    var minutes = Math.floor(value / 60000);
    return minutes + " min " + Math.round((value % 60000) / 1000) + " s";
  }
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) Object.keys(attrs).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "className") node.className = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }
  function valueNode(value) {
    var text = typeof value === "string" ? value : JSON.stringify(value, null, 2);
    if (typeof value === "string" && /^[\[{]/.test(value)) {
      try { text = JSON.stringify(JSON.parse(value), null, 2); } catch (e) { /* not JSON: as it is */ }
    }
    return el("pre", { text: text });
  }

  // ---- details panel: a span's attributes ----------------------------------

  var panel = document.getElementById("details");
  function closeDetails() { document.body.classList.remove("details-open"); }
  panel.querySelector("button.close").addEventListener("click", closeDetails);
  document.addEventListener("keydown", function (event) { if (event.key === "Escape") closeDetails(); });

  function attributeTable(attributes) {
    var table = el("table", { className: "attrs" });
    Object.keys(attributes).sort().forEach(function (key) {
      table.appendChild(el("tr", null, [el("td", { text: key }), el("td", null, [valueNode(attributes[key])])]));
    });
    return table;
  }

  function showDetails(spanId) {
    var d = doc.details[spanId];
    var body = panel.querySelector(".details-body");
    body.textContent = "";
    panel.querySelector("h2").textContent = d ? d.name : "span " + spanId;
    panel.dataset.spanId = spanId;
    if (!d) {
      body.appendChild(el("p", { className: "empty", text: "No details recorded for this span." }));
    } else {
      var summary = el("table", { className: "attrs" });
      [["span id", spanId], ["kind", d.kind], ["status", d.status + (d.status_message ? ": " + d.status_message : "")],
       ["agent", d.agent], ["branch", d.branch_path], ["start", d.start], ["duration", ms(d.duration_ms)]]
        .forEach(function (row) {
          if (row[1]) summary.appendChild(el("tr", null, [el("td", { text: row[0] }), el("td", { text: row[1] })]));
        });
      body.appendChild(summary);
      body.appendChild(el("h3", { text: "Attributes" }));
      body.appendChild(attributeTable(d.attributes));
      if (d.events && d.events.length) {
        body.appendChild(el("h3", { text: "Events" }));
        d.events.forEach(function (event) {
          body.appendChild(el("p", null, [el("b", { text: event.name }), document.createTextNode(" at " + ms(event.t_ms))]));
          body.appendChild(attributeTable(event.attributes));
        });
      }
    }
    // The panel slides over the page rather than narrowing it: resizing the
    // charts would redraw every bar of a large run on each click.
    document.body.classList.add("details-open");
  }
  // Anything with data-span (decision cards, branch rows, a tool's button) opens its span.
  document.addEventListener("click", function (event) {
    var target = event.target.closest("[data-span]");
    if (target) showDetails(target.getAttribute("data-span"));
  });

  // ---- swimlanes --------------------------------------------------------

  function renderSwimlanes() {
    var container = document.getElementById("swimlanes");
    var lanes = doc.lanes;
    var s = doc.spans;
    var rowHeight = 26;
    var visibleRows = Math.min(lanes.length, 24);
    container.style.height = (visibleRows * rowHeight + 110) + "px";

    // Containers (run, agent, fork, branch spans) are the lane's "waiting"
    // background; model calls and tools are drawn over them.
    var background = [], activity = [];
    for (var i = 0; i < s.id.length; i++) {
      var item = [s.lane[i], s.start[i], s.end[i], s.activity[i], i];
      (s.activity[i] === WAITING ? background : activity).push(item);
    }
    // After a lane's work ends, until the report's end: done, or failed.
    lanes.forEach(function (lane, index) {
      if (lane.end_ms < doc.end_ms) {
        background.push([index, lane.end_ms, doc.end_ms, lane.outcome === "failed" ? FAILED : DONE, -1]);
      }
    });

    function bars(heightShare) {
      return function (params, api) {
        var start = api.coord([api.value(1), api.value(0)]);
        var end = api.coord([api.value(2), api.value(0)]);
        var height = api.size([0, 1])[1] * heightShare;
        var shape = echarts.graphic.clipRectByRect(
          { x: start[0], y: start[1] - height / 2, width: Math.max(end[0] - start[0], 1), height: height },
          { x: params.coordSys.x, y: params.coordSys.y, width: params.coordSys.width, height: params.coordSys.height });
        var tail = api.value(4) < 0;
        return shape && {
          type: "rect", transition: [], shape: shape,
          style: { fill: ACTIVITY_COLOUR[api.value(3)], opacity: tail ? 0.35 : 1 }
        };
      };
    }
    var markerSymbols = { fork: "diamond", join: "triangle", intervention: "pin" };
    var markerColours = { fork: colour("fg"), join: colour("muted"), intervention: colour("intervention") };
    var markers = doc.markers.map(function (m) {
      return { value: [m.t, m.lane], name: m.label, span: m.span, kind: m.type,
               symbol: markerSymbols[m.type], symbolSize: m.type === "intervention" ? 18 : 11,
               itemStyle: { color: markerColours[m.type] } };
    });
    var chart = echarts.init(container, null, { renderer: "canvas" });
    charts.push(chart);
    chart.setOption({
      animation: false,
      grid: { left: 230, right: 30, top: 20, bottom: 60 },
      tooltip: {
        formatter: function (p) {
          if (p.seriesName === "markers") return p.data.kind + ": " + p.data.name + " at " + ms(p.value[0]);
          var index = p.value[4];
          if (index < 0) return lanes[p.value[0]].label + ": " + ACTIVITY[p.value[3]];
          return s.name[index] + " (" + ACTIVITY[p.value[3]] + ")<br>" + ms(p.value[1]) + " to " + ms(p.value[2]) +
                 ", " + ms(p.value[2] - p.value[1]);
        }
      },
      dataZoom: [
        { type: "slider", xAxisIndex: 0, filterMode: "weakFilter", height: 18, bottom: 8 },
        { type: "inside", xAxisIndex: 0, filterMode: "weakFilter" },
        { type: "slider", yAxisIndex: 0, filterMode: "weakFilter", width: 14, right: 6,
          show: lanes.length > visibleRows, startValue: 0, endValue: visibleRows - 1, zoomLock: false }
      ],
      xAxis: { type: "value", min: 0, max: doc.end_ms, name: "time since start",
               nameLocation: "middle", nameGap: 26, axisLabel: { formatter: ms } },
      yAxis: { type: "category", inverse: true, data: lanes.map(function (l) { return l.label; }),
               axisLabel: { width: 215, overflow: "truncate" }, splitLine: { show: true } },
      series: [
        { type: "custom", name: "lanes", renderItem: bars(0.8), encode: { x: [1, 2], y: 0 },
          data: background, progressive: 4000, clip: true },
        { type: "custom", name: "activity", renderItem: bars(0.5), encode: { x: [1, 2], y: 0 },
          data: activity, progressive: 4000, clip: true },
        { type: "scatter", name: "markers", data: markers, z: 5 }
      ]
    });
    chart.on("click", function (p) {
      if (p.seriesName === "markers") { showDetails(p.data.span); return; }
      var index = p.value[4];
      showDetails(index >= 0 ? s.id[index] : lanes[p.value[0]].span);
    });
    // What the browser tests read: the lanes drawn and a way to click a span.
    window.forktraceReport.swimlanes = chart;
    // When the canvas first holds every bar (progressive rendering spans frames),
    // in ms since navigation start: what benchmarks/report.py measures.
    chart.on("finished", function () {
      if (!window.forktraceReport.drawnAt) window.forktraceReport.drawnAt = performance.now();
    });
  }

  // ---- fork trees -----------------------------------------------------------

  function outcomeColour(outcome) { return colour(outcome || "lost"); }

  function treeData(run) {
    var root = { name: run.name || run.run_id, span: run.span, children: [],
                 label: { position: "top", align: "left", verticalAlign: "bottom", fontWeight: "bold" },
                 itemStyle: { color: colour(run.outcome === "failed" ? "failed" : "won") }, kind: "run" };
    var byPath = { "": root };
    var branchesByFork = {};
    run.branches.forEach(function (b) { (branchesByFork[b.fork_id] = branchesByFork[b.fork_id] || []).push(b); });
    // Parents before children: a fork hangs under the branch path it was opened in.
    var forks = run.forks.slice().sort(function (a, b) { return a.parent_path.length - b.parent_path.length || a.start_ms - b.start_ms; });
    forks.forEach(function (fork) {
      var node = { name: fork.name + (fork.strategy ? " (" + fork.strategy + ")" : ""), span: fork.id, kind: "fork",
                   fork: fork, children: [], symbol: "diamond", symbolSize: 12, itemStyle: { color: colour("fg") } };
      (byPath[fork.parent_path] || root).children.push(node);
      (branchesByFork[fork.id] || []).sort(function (a, b) { return a.index - b.index; }).forEach(function (b) {
        var won = b.id === fork.winner;
        var child = { name: (won ? "★ " : "") + b.path + " " + (b.label || "") + " · " + (b.outcome || "?"),
                      span: b.id, kind: "branch", branch: b, children: [], symbolSize: won ? 14 : 10,
                      itemStyle: { color: outcomeColour(b.outcome) },
                      label: { fontWeight: won ? "bold" : "normal" } };
        node.children.push(child);
        byPath[b.path] = child;
      });
    });
    return root;
  }

  function countLeaves(node) {
    return node.children.length ? node.children.reduce(function (n, c) { return n + countLeaves(c); }, 0) : 1;
  }

  function renderTrees() {
    doc.runs.forEach(function (run, runIndex) {
      var container = document.getElementById("tree-" + runIndex);
      if (!container) return;
      var data = treeData(run);
      container.style.height = Math.max(160, countLeaves(data) * 34 + 40) + "px";
      var chart = echarts.init(container, null, { renderer: "canvas" });
      charts.push(chart);
      chart.setOption({
        animation: false,
        tooltip: {
          formatter: function (p) {
            var d = p.data;
            if (d.kind === "fork") {
              var f = d.fork;
              return "fork " + f.name + "<br>strategy: " + (f.strategy || "-") + "<br>criterion: " +
                     (f.criterion || "-") + "<br>winner: " + (f.winner_label || f.winner || "-");
            }
            if (d.kind === "branch") {
              var b = d.branch;
              return b.path + " " + (b.label || "") + "<br>outcome: " + (b.outcome || "?") +
                     (b.reason ? "<br>reason: " + echarts.format.encodeHTML(b.reason) : "");
            }
            return d.name;
          }
        },
        series: [{
          type: "tree", data: [data], orient: "LR", left: 40, right: 280, top: 40, bottom: 20,
          expandAndCollapse: false, initialTreeDepth: -1, roam: true,
          label: { position: "left", verticalAlign: "middle", align: "right", fontSize: 12 },
          leaves: { label: { position: "right", align: "left" } },
          lineStyle: { color: "#b8c0cc" }
        }]
      });
      chart.on("click", function (p) { if (p.data && p.data.span) showDetails(p.data.span); });
      (window.forktraceReport.trees = window.forktraceReport.trees || []).push(chart);
    });
  }

  // ---- tool calls: paged, expandable, errors highlighted ---------------------

  function renderTools(runIndex) {
    var run = doc.runs[runIndex];
    var box = document.getElementById("tools-" + runIndex);
    if (!box) return;
    var tbody = box.querySelector("tbody");
    var search = box.querySelector("input[type=search]");
    var errorsOnly = box.querySelector("input[type=checkbox]");
    var pager = box.querySelector(".pager");
    var page = 0;

    function matches(tool) {
      if (errorsOnly.checked && tool.status !== "Error") return false;
      var q = search.value.trim().toLowerCase();
      return !q || (tool.name + " " + tool.arguments + " " + tool.result + " " + tool.agent).toLowerCase().indexOf(q) >= 0;
    }
    function detailRow(tool) {
      var attrs = (doc.details[tool.span] || {}).attributes || {};
      var args = attrs["gen_ai.tool.call.arguments"] || tool.arguments;
      var result = attrs["gen_ai.tool.call.result"] || tool.result;
      var cell = el("td", { colspan: "7" }, [
        el("b", { text: "arguments" }), valueNode(args || ""),
        el("b", { text: "result" }), valueNode(result || ""),
        tool.error ? el("p", { className: "status", text: "error: " + tool.error }) : null,
        el("button", { "data-span": tool.span, text: "all attributes" })
      ]);
      return el("tr", { className: "tool-detail" + (tool.status === "Error" ? " error" : "") }, [cell]);
    }
    function draw() {
      var shown = run.tools.filter(matches);
      var pages = Math.max(1, Math.ceil(shown.length / TOOL_PAGE));
      page = Math.min(page, pages - 1);
      tbody.textContent = "";
      shown.slice(page * TOOL_PAGE, (page + 1) * TOOL_PAGE).forEach(function (tool) {
        var row = el("tr", { className: "tool-row" + (tool.status === "Error" ? " error" : ""), "data-tool-span": tool.span }, [
          el("td", { className: "num", text: ms(tool.t_ms) }),
          el("td", { text: tool.name }),
          el("td", { text: tool.agent + (tool.branch_path ? " · " + tool.branch_path : "") }),
          el("td", null, [el("div", { className: "preview", text: tool.arguments })]),
          el("td", null, [el("div", { className: "preview", text: tool.error || tool.result })]),
          el("td", { className: "num", text: ms(tool.duration_ms) }),
          el("td", { className: "status", text: tool.status === "Error" ? "error" : "ok" })
        ]);
        row.addEventListener("click", function () {
          var next = row.nextSibling;
          if (next && next.classList.contains("tool-detail")) { next.remove(); return; }
          row.parentNode.insertBefore(detailRow(tool), next);
        });
        tbody.appendChild(row);
      });
      pager.textContent = "";
      pager.appendChild(document.createTextNode(shown.length + " of " + run.tools.length + " tool calls; page " + (page + 1) + " of " + pages + " "));
      var prev = el("button", { text: "‹ previous" }); prev.disabled = page === 0;
      var next = el("button", { text: "next ›" }); next.disabled = page >= pages - 1;
      prev.addEventListener("click", function () { page--; draw(); });
      next.addEventListener("click", function () { page++; draw(); });
      pager.appendChild(prev); pager.appendChild(next);
    }
    search.addEventListener("input", function () { page = 0; draw(); });
    errorsOnly.addEventListener("change", function () { page = 0; draw(); });
    draw();
  }

  window.forktraceReport = { document: doc, showDetails: showDetails };
  renderSwimlanes();
  renderTrees();
  doc.runs.forEach(function (run, index) { renderTools(index); });
  window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
  window.forktraceReport.ready = true;
  window.forktraceReport.readyAt = performance.now();
  document.body.setAttribute("data-ready", "true");
})();
