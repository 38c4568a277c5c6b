// mtst's panels on the static site, without a kernel. Each notebook output that held the freeze panel, the
// learning-rate panel or the gradient-step slider also held the data to redraw it (mtst.widgets.STATIC_MIME); the site
// (mtst.lab.site) puts that data in a <div class="mtst-static"> and this script draws working controls from it.
// Nothing is fetched: the data is in the page. Training needs a kernel, so the trials run at build time are shown.
(function () {
  "use strict";
  const SVG = "http://www.w3.org/2000/svg";
  const BLUE = "#1f77b4", GREY = "#d3d3d3";
  // matplotlib's viridis at five stops; the encoder's groups bottom to top, as mtst.optim.plot_lr_schedule colours them
  const VIRIDIS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  const TAB10 = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"];

  function viridis(t) {
    const x = Math.min(Math.max(t, 0), 1) * (VIRIDIS.length - 1), i = Math.min(Math.floor(x), VIRIDIS.length - 2), f = x - i;
    const c = VIRIDIS[i].map((v, k) => Math.round(v + f * (VIRIDIS[i + 1][k] - v)));
    return `rgb(${c.join(",")})`;
  }

  function node(tag, attrs, parent, text) {
    const e = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }

  // The schedule's factor at a step: transformers.get_scheduler's formulas for the first four (cosine with half a
  // cycle), mtst.optim._slanted_triangular's for the last. Python's make_scheduler is the reference; the e2e suite
  // compares the two.
  function factor(name, step, warmup, total) {
    const rise = step < warmup ? step / Math.max(1, warmup) : null;
    if (name === "constant") return 1;
    if (name === "constant_with_warmup") return rise !== null ? rise : 1;
    if (name === "linear") return rise !== null ? rise : Math.max(0, (total - step) / Math.max(1, total - warmup));
    if (name === "cosine") {
      if (rise !== null) return rise;
      const progress = (step - warmup) / Math.max(1, total - warmup);
      return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * 0.5 * 2 * progress)));
    }
    if (name === "slanted_triangular") {
      const cutFrac = 0.1, ratio = 32, cut = Math.max(1, Math.floor(total * cutFrac));
      const p = step < cut ? step / cut : 1 - (step - cut) / Math.max(1, cut * (1 / cutFrac - 1));
      return (1 + Math.max(p, 0) * (ratio - 1)) / ratio;
    }
    throw new Error("unknown schedule " + name);
  }

  // Each group's starting lr: lr·ξ^power for the encoder's groups, the head lr for the heads.
  function groupRates(state, lr, headLr, decay) {
    return state.groups.map(g => ({name: g.name, head: g.head, lr: g.head ? headLr : lr * Math.pow(decay, g.power)}));
  }

  // Every group's lr at every step; heads with the same rate share one line, named after all of them (as
  // mtst.optim.plot_lr_schedule draws them).
  function lrTable(state, s) {
    const groups = [];
    for (const g of groupRates(state, s.lr, s.head_lr, s.decay)) {
      const twin = g.head && groups.find(h => h.head && h.lr === g.lr);
      if (twin) twin.name = (twin.name.startsWith("heads: ") ? twin.name : "heads: " + twin.name.replace("head:", "")) + ", " + g.name.replace("head:", "");
      else groups.push({...g});
    }
    const rows = [];
    for (let step = 0; step < s.steps; step++) {
      const f = factor(s.schedule, step, s.warmup, s.steps);
      rows.push(groups.map(g => g.lr * f));
    }
    return {names: groups.map(g => g.name), heads: groups.map(g => g.head), rows};
  }

  function ticks(lo, hi, n) {
    const span = hi - lo || 1, raw = span / n, mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map(m => m * mag).find(v => span / v <= n) || 10 * mag;
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-12; v += step) out.push(+v.toPrecision(12));
    return out;
  }

  // Horizontal bars, one per label, bottom label at the bottom (as matplotlib's barh draws them).
  function barChart(box, labels, values, colors, xlabel, title) {
    box.textContent = "";
    const left = 110, top = 24, rowH = 18, width = 560, plotW = width - left - 20, height = top + rowH * labels.length + 40;
    const svg = node("svg:svg", {width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title}, box);
    node("svg:text", {x: left + plotW / 2, y: 15, "text-anchor": "middle", "font-size": 12, class: "mtst-site-title"}, svg, title);
    const max = Math.max(...values, 0) || 1;
    const xs = ticks(0, max, 5);
    const scale = plotW / Math.max(max, xs[xs.length - 1]);
    labels.forEach((label, i) => {
      const y = top + rowH * (labels.length - 1 - i);
      node("svg:rect", {x: left, y: y + 2, width: Math.max(0, values[i] * scale), height: rowH - 4, fill: colors[i]}, svg);
      node("svg:text", {x: left - 6, y: y + rowH - 5, "text-anchor": "end", "font-size": 11}, svg, label);
    });
    const axisY = top + rowH * labels.length;
    node("svg:line", {x1: left, x2: left + plotW, y1: axisY, y2: axisY, stroke: "#333"}, svg);
    xs.forEach(v => node("svg:text", {x: left + v * scale, y: axisY + 14, "text-anchor": "middle", "font-size": 10}, svg, String(v)));
    node("svg:text", {x: left + plotW / 2, y: axisY + 32, "text-anchor": "middle", "font-size": 11}, svg, xlabel);
    return svg;
  }

  // Lines over steps on a log axis: one per group, heads dashed.
  function lineChart(box, table, xlabel, ylabel) {
    box.textContent = "";
    const width = 640, height = 300, left = 70, right = 150, top = 10, bottom = 40, plotW = width - left - right, plotH = height - top - bottom;
    const svg = node("svg:svg", {width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": ylabel + " over " + xlabel}, box);
    const positive = table.rows.flat().filter(v => v > 0);
    const lo = Math.floor(Math.log10(Math.min(...positive))), hi = Math.ceil(Math.log10(Math.max(...positive)));
    const n = table.rows.length, x = s => left + (n > 1 ? s / (n - 1) : 0) * plotW;
    const y = v => top + plotH * (1 - (Math.log10(Math.max(v, Math.pow(10, lo))) - lo) / Math.max(1, hi - lo));
    node("svg:rect", {x: left, y: top, width: plotW, height: plotH, fill: "none", stroke: "#333"}, svg);
    for (let e = lo; e <= hi; e++) {
      node("svg:line", {x1: left, x2: left + plotW, y1: y(Math.pow(10, e)), y2: y(Math.pow(10, e)), stroke: "#eee"}, svg);
      node("svg:text", {x: left - 6, y: y(Math.pow(10, e)) + 4, "text-anchor": "end", "font-size": 10}, svg, `1e${e}`);
    }
    ticks(0, n - 1, 5).forEach(s => node("svg:text", {x: x(s), y: top + plotH + 14, "text-anchor": "middle", "font-size": 10}, svg, String(s)));
    node("svg:text", {x: left + plotW / 2, y: height - 6, "text-anchor": "middle", "font-size": 11}, svg, xlabel);
    node("svg:text", {x: 14, y: top + plotH / 2, "text-anchor": "middle", "font-size": 11, transform: `rotate(-90 14 ${top + plotH / 2})`}, svg, ylabel);
    const encoder = table.names.filter((_, i) => !table.heads[i]).length;
    let e = 0, h = 0;
    table.names.forEach((name, i) => {
      const color = table.heads[i] ? TAB10[h++ % TAB10.length] : viridis(e++ / Math.max(1, encoder - 1));
      const d = table.rows.map((row, s) => `${s ? "L" : "M"}${x(s).toFixed(1)},${y(row[i]).toFixed(1)}`).join("");
      node("svg:path", {d, fill: "none", stroke: color, "stroke-width": 1.3, "stroke-dasharray": table.heads[i] ? "5,3" : "none",
                        class: "mtst-site-line"}, svg);
      const ly = top + 10 + 12 * i;
      node("svg:line", {x1: left + plotW + 8, x2: left + plotW + 24, y1: ly - 3, y2: ly - 3, stroke: color, "stroke-width": 2,
                        "stroke-dasharray": table.heads[i] ? "4,2" : "none"}, svg);
      node("svg:text", {x: left + plotW + 28, y: ly, "font-size": 9}, svg, name);
    });
    return svg;
  }

  function pct(f) { return (100 * f).toFixed(1) + "%"; }
  function count(n) { return n.toLocaleString("en-US"); }
  function note(root, text) { node("p", {class: "mtst-site-note"}, root).innerHTML = text; }
  function trials(root, html, what) {
    if (!html) return;
    node("p", {class: "mtst-site-note"}, root, `The ${what} run when this page was built (training needs a kernel):`);
    node("div", {class: "mtst-site-trials"}, root).innerHTML = html;
  }

  // The freeze panel: a box per part; the readout and the map redraw from each part's size.
  function freezePanel(root, state) {
    const on = state.parts.map(p => p.trainable);
    const row = node("div", {class: "mtst-site-row"}, root);
    const boxes = node("div", {class: "mtst-site-toggles"}, row);
    const figure = node("div", {class: "mtst-site-figure"}, row);
    const readout = node("p", {class: "mtst-site-readout"}, root);
    function draw() {
      const total = state.parts.reduce((a, p) => a + p.params, 0);
      const trainable = state.parts.reduce((a, p, i) => a + (on[i] ? p.params : 0), 0);
      readout.textContent = `trainable: ${count(trainable)} of ${count(total)} parameters (${pct(trainable / total)})`;
      barChart(figure, state.parts.map(p => p.part), state.parts.map(p => p.params / 1e6), on.map(t => t ? BLUE : GREY),
               "parameters (millions)", `blue: trainable, grey: frozen · ${pct(trainable / total)} trainable`);
    }
    state.parts.forEach((p, i) => {
      const label = node("label", {class: "mtst-site-toggle"}, boxes);
      const box = node("input", {type: "checkbox", "data-part": p.part}, label);
      box.checked = on[i];
      label.appendChild(document.createTextNode(" " + p.part));
      box.addEventListener("change", () => { on[i] = box.checked; draw(); });
    });
    note(root, "Tick and untick the parts: the count and the map follow, here in the page. Open the notebook in JupyterLab " +
               "(<code>make lab</code>) to train with the parts as ticked.");
    trials(root, state.trials, "trials");
    draw();
  }

  function slider(parent, label, attrs, show) {
    const wrap = node("label", {class: "mtst-site-slider"}, parent, label + " ");
    const input = node("input", {type: "range", "aria-label": label, ...attrs}, wrap);
    const out = node("output", {}, wrap);
    const update = () => { out.textContent = show(+input.value); };
    input.addEventListener("input", update);
    update();
    return input;
  }

  // The learning-rate panel: the same sliders as the notebook's; the lines and the table redraw from the groups.
  function schedulePanel(root, state) {
    const s0 = state.start, controls = node("div", {class: "mtst-site-controls"}, root), exp = v => Math.pow(10, v).toExponential(1);
    const lr = slider(controls, "lr (top layer)", {min: -6, max: -2, step: 0.25, value: Math.log10(s0.lr)}, exp);
    const headLr = slider(controls, "head lr", {min: -6, max: -1, step: 0.25, value: Math.log10(s0.head_lr)}, exp);
    const decay = slider(controls, "decay ξ", {min: 0.5, max: 1, step: 0.05, value: s0.decay}, v => v.toFixed(2));
    const warmup = slider(controls, "warmup steps", {min: 0, max: s0.steps, step: 1, value: s0.warmup}, v => String(v));
    const steps = slider(controls, "total steps", {min: 10, max: 5 * s0.steps, step: 10, value: s0.steps}, v => String(v));
    const kind = node("select", {"aria-label": "schedule"}, node("label", {class: "mtst-site-slider"}, controls, "schedule "));
    state.schedules.forEach(name => { node("option", {value: name}, kind, name).selected = name === s0.schedule; });
    const status = node("p", {class: "mtst-site-readout"}, root);
    const figure = node("div", {class: "mtst-site-figure"}, root);
    const table = node("div", {class: "mtst-site-table"}, root);
    function draw() {
      warmup.max = steps.value;
      const s = {lr: Math.pow(10, +lr.value), head_lr: Math.pow(10, +headLr.value), decay: +decay.value, schedule: kind.value,
                 warmup: Math.min(+warmup.value, +steps.value), steps: +steps.value};
      const groups = groupRates(state, s.lr, s.head_lr, s.decay);
      const bottom = groups[0].lr;
      status.textContent = `embeddings start at ${bottom.toExponential(2)}, the top layer at ${s.lr.toExponential(2)}: ` +
                           `a ratio of ${(s.lr / bottom).toFixed(1)}×`;
      lineChart(figure, lrTable(state, s), "step", "learning rate");
      table.innerHTML = "<table class='mtst-table'><thead><tr><th>group</th><th>lr</th></tr></thead><tbody>" +
        groups.map(g => `<tr><td>${g.name}</td><td>${g.lr.toExponential(2)}</td></tr>`).join("") + "</tbody></table>";
    }
    [lr, headLr, decay, warmup, steps, kind].forEach(c => c.addEventListener("input", draw));
    note(root, "Move the sliders: every group's rate follows, computed in the page from the model's groups (lr·ξ<sup>depth</sup> " +
               "below the top layer). Open the notebook in JupyterLab (<code>make lab</code>) to train with them.");
    trials(root, state.trials, "trials");
    draw();
  }

  // The gradient-step slider: each part's gradient norm at the recorded step at or before the one chosen.
  function gradSteps(root, state) {
    const first = state.steps[0], last = state.steps[state.steps.length - 1];
    const step = slider(root, "step", {min: first, max: last, step: 1, value: state.start}, v => String(v));
    const figure = node("div", {class: "mtst-site-figure"}, root);
    function draw() {
      const want = +step.value;
      let i = 0;
      state.steps.forEach((s, k) => { if (s <= want) i = k; });
      barChart(figure, state.parts, state.norms[i], state.norms[i].map(g => g > 0 ? BLUE : GREY), "gradient norm",
               `step ${state.steps[i]} (${state.tasks[i]} batch)`);
    }
    step.addEventListener("input", draw);
    draw();
  }

  const PANELS = {freeze: freezePanel, schedule: schedulePanel, grad_steps: gradSteps};

  function mount(root) {
    const data = root.querySelector("script[type='application/json']");
    const state = JSON.parse(data.textContent);
    root.querySelectorAll(".mtst-static-fallback").forEach(e => e.remove());
    PANELS[state.kind](root, state);
    root.classList.add("mtst-static-ready");
  }

  window.mtstSite = {factor, groupRates, lrTable, mount};
  const start = () => document.querySelectorAll(".mtst-static").forEach(mount);
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
})();
