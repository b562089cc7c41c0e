// The job page's pipeline graph: the manifest's nodes and datasets, left to right in layers
// (each one right of what it reads), each node coloured by its state in this run. SVG
// attributes only (the page's CSP allows no inline styles); names go in as text. Parameters
// are left out: every node reads them, they would only cross the drawing.
"use strict";

window.kedroJobsGraph = (() => {
  const SVG = "http://www.w3.org/2000/svg";
  const COL = 176;
  const ROW = 40;
  const BOX_W = 150;
  const BOX_H = 26;
  const PAD = 10;
  const TOP = 24; // room for the arcs of edges that skip a layer

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  const isParam = (name) => name === "parameters" || name.startsWith("params:");
  const short = (name) => (name.length > 22 ? `${name.slice(0, 21)}\u2026` : name);

  // nodes: the manifest's [{name, inputs, outputs}]; states: Map node name -> state.
  function render(container, nodes, states) {
    // Vertices: "n:" nodes and "d:" datasets; edges dataset -> node -> dataset.
    const layer = new Map();
    const edges = [];
    const datasets = new Set();
    for (const n of nodes) {
      for (const i of n.inputs) if (!isParam(i)) { datasets.add(i); edges.push([`d:${i}`, `n:${n.name}`]); }
      for (const o of n.outputs) { datasets.add(o); edges.push([`n:${n.name}`, `d:${o}`]); }
    }
    const vertices = [...datasets].map((d) => `d:${d}`).concat(nodes.map((n) => `n:${n.name}`));
    for (const v of vertices) layer.set(v, 0);
    // Longest path from a source: a DAG settles in at most |V| rounds.
    for (let round = 0; round < vertices.length; round += 1) {
      let moved = false;
      for (const [a, b] of edges) {
        if (layer.get(b) < layer.get(a) + 1) { layer.set(b, layer.get(a) + 1); moved = true; }
      }
      if (!moved) break;
    }
    const columns = new Map();
    for (const v of vertices) {
      const l = layer.get(v);
      if (!columns.has(l)) columns.set(l, []);
      columns.get(l).push(v);
    }
    const pos = new Map();
    let rows = 0;
    for (const [l, vs] of columns) {
      vs.forEach((v, i) => pos.set(v, { x: PAD + l * COL, y: TOP + i * ROW }));
      rows = Math.max(rows, vs.length);
    }
    const width = PAD * 2 + Math.max(1, columns.size) * COL;
    const height = TOP + PAD + Math.max(1, rows) * ROW;
    // At its own size: a wide pipeline scrolls, its names stay readable.
    const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, width,
      class: "graph-svg", role: "img", "aria-label": "pipeline graph" });
    const defs = svg("defs");
    const marker = svg("marker", { id: "graph-arrow", viewBox: "0 0 8 8", refX: 8, refY: 4,
      markerWidth: 6, markerHeight: 6, orient: "auto" });
    marker.append(svg("path", { d: "M0,0 L8,4 L0,8 z", class: "graph-arrow" }));
    defs.append(marker);
    root.append(defs);
    for (const [a, b] of edges) {
      const p = pos.get(a);
      const q = pos.get(b);
      const x1 = p.x + BOX_W;
      const y1 = p.y + BOX_H / 2;
      const x2 = q.x;
      const y2 = q.y + BOX_H / 2;
      const mid = (x1 + x2) / 2;
      // An edge that skips a layer arcs over the boxes between, not through them.
      const over = x2 - x1 > COL ? Math.min(y1, y2) - BOX_H : null;
      const d = over === null
        ? `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`
        : `M${x1},${y1} C${x1 + COL / 2},${over} ${x2 - COL / 2},${over} ${x2},${y2}`;
      root.append(svg("path", { d,
        class: "graph-edge", "marker-end": "url(#graph-arrow)" }));
    }
    for (const v of vertices) {
      const { x, y } = pos.get(v);
      const name = v.slice(2);
      const isNode = v.startsWith("n:");
      const state = isNode ? states.get(name) || "pending" : null;
      const g = svg("g", isNode
        ? { class: `graph-node state-${state}`, "data-node": name, "data-state": state }
        : { class: "graph-dataset", "data-dataset": name });
      g.append(svg("title", {}, isNode ? `${name}: ${state}` : name));
      g.append(svg("rect", { x, y, width: BOX_W, height: BOX_H, rx: isNode ? 4 : 13 }));
      g.append(svg("text", { x: x + BOX_W / 2, y: y + 17, "text-anchor": "middle" }, short(name)));
      root.append(g);
    }
    container.replaceChildren(root);
  }

  return { render };
})();
