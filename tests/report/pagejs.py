"""JavaScript the browser tests and benchmarks/report.py run in a report page
to find what a user would click (ECharts draws on a canvas, so there is no
element to click: these turn a span into the pixel where it is drawn)."""

SPAN_PIXEL = """(id) => {
    const report = window.forktraceReport, spans = report.document.spans, chart = report.swimlanes;
    const i = spans.id.indexOf(id);
    if (i < 0) return null;
    chart.getDom().scrollIntoView();
    const p = chart.convertToPixel({gridIndex: 0}, [(spans.start[i] + spans.end[i]) / 2, spans.lane[i]]);
    const box = chart.getDom().getBoundingClientRect();
    return [box.left + p[0], box.top + p[1]];
}"""

TREE_NODE_PIXEL = """([run, id]) => {
    const chart = window.forktraceReport.trees[run];
    chart.getDom().scrollIntoView();
    const data = chart.getModel().getSeriesByIndex(0).getData();
    for (let i = 0; i < data.count(); i++) {
        if (data.tree.getNodeByDataIndex(i).getModel().option.span === id) {
            const p = data.getItemGraphicEl(i).transformCoordToGlobal(0, 0);
            const box = chart.getDom().getBoundingClientRect();
            return [box.left + p[0], box.top + p[1]];
        }
    }
    return null;
}"""

TREE_NODE_NAMES = """(run) => {
    const names = [];
    const walk = (node) => { names.push(node.name); (node.children || []).forEach(walk); };
    walk(window.forktraceReport.trees[run].getOption().series[0].data[0]);
    return names;
}"""

# A tool call of worker 3 (halfway through): its lane is among the first drawn,
# where the swimlane chart's vertical zoom shows it without scrolling.
BIG_RUN_TOOL = """() => {
    const tools = window.forktraceReport.document.runs[0].tools.filter(t => t.agent === 'worker-3');
    return tools[Math.floor(tools.length / 2)].span;
}"""
