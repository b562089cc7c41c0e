// The job page's node timeline: one bar per node on a shared time axis, from the record's
// `nodes` (each node's start, end, status, segment and compute). Drawn as SVG attributes only
// (the page's CSP allows no inline styles); names go in as text, never as markup. A running
// node's bar grows to "now" at each refresh; segment starts are marked, Fargate ones named.
"use strict";

window.kedroJobsTimeline = (() => {
  const SVG = "http://www.w3.org/2000/svg";
  const ROW = 22;
  const LABEL = 190; // px for node names
  const RIGHT = 90; // px for durations
  const WIDTH = 900;

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  function secondsText(s) {
    if (s === null || s === undefined || Number.isNaN(s)) return "";
    if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
    const m = Math.floor(s / 60);
    return `${m}m ${String(Math.floor(s - m * 60)).padStart(2, "0")}s`;
  }

  function short(name, max) {
    return name.length > max ? `${name.slice(0, max - 1)}\u2026` : name;
  }

  // rows: [{name, state}] in run order (the manifest's view, with states); the record's
  // entries give the times. Returns the number of bars drawn.
  function render(container, job, rows, now) {
    const entries = new Map();
    for (const n of job.nodes || []) entries.set(n.name, n); // the latest entry of a name
    const named = new Set(rows.map((r) => r.name));
    const all = rows.concat((job.nodes || []).filter((n) => !named.has(n.name))
      .map((n) => ({ name: n.name, state: n.status })));
    const t = (iso) => (iso ? new Date(iso).getTime() : null);
    const nowMs = (now || new Date()).getTime();
    const spans = all.map(({ name, state }) => {
      const e = entries.get(name);
      const start = e ? t(e.started_at) : null;
      let end = e ? t(e.finished_at) : null;
      const status = e ? e.status : state;
      if (start !== null && end === null && status === "running") end = Math.max(start, nowMs);
      if (start !== null && end === null && e && e.duration !== null) end = start + e.duration * 1000;
      return { name, status, start, end, entry: e };
    });
    const starts = spans.map((s) => s.start).filter((v) => v !== null);
    const ends = spans.map((s) => s.end).filter((v) => v !== null);
    const t0 = starts.length ? Math.min(...starts) : t(job.started_at) || nowMs;
    let t1 = ends.length ? Math.max(...ends) : t0 + 1000;
    const eta = job.status === "running" ? t(job.eta) : null;
    if (eta && eta > t1) t1 = eta;
    const span = Math.max(t1 - t0, 1);
    const plot = WIDTH - LABEL - RIGHT;
    const x = (ms) => LABEL + ((ms - t0) / span) * plot;
    const height = ROW * (spans.length + 1) + 8;
    const root = svg("svg", { viewBox: `0 0 ${WIDTH} ${height}`, width: "100%", class: "timeline-svg",
      role: "img", "aria-label": "node timeline" });
    // The axis: the run's start and its span.
    root.append(svg("text", { x: LABEL, y: 12, class: "tl-axis" }, "0 s"));
    root.append(svg("text", { x: WIDTH - RIGHT, y: 12, class: "tl-axis", "text-anchor": "end" },
      `${secondsText(span / 1000)}${eta && eta >= t1 ? " (ETA)" : ""}`));
    // Segment starts after the first: where the run went on (another invocation, Fargate).
    (job.segments || []).forEach((seg, i) => {
      const at = t(seg.started_at);
      if (i === 0 || at === null || at < t0 || at > t1) return;
      const sx = x(at);
      root.append(svg("line", { x1: sx, x2: sx, y1: 16, y2: height, class: "tl-segment",
        "data-segment": seg.segment }));
      root.append(svg("text", { x: sx + 3, y: height - 2, class: "tl-segment-label" },
        `segment ${seg.segment} \u00b7 ${seg.compute}`));
    });
    spans.forEach((s, i) => {
      const y = ROW * (i + 1);
      const g = svg("g", { class: `tl-row tl-${s.status}`, "data-node": s.name, "data-state": s.status });
      g.append(svg("title", {}, s.name));
      g.append(svg("text", { x: LABEL - 6, y: y + 14, "text-anchor": "end", class: "tl-name" }, short(s.name, 28)));
      if (s.start !== null && s.end !== null) {
        const bx = x(s.start);
        const bw = Math.max(2, x(s.end) - bx);
        let where = s.entry && s.entry.segment ? `${s.entry.compute || ""} #${s.entry.segment}` : "";
        // A fanned-out job's node: the group that ran it and that group's worker.
        if (s.entry && s.entry.group) {
          where = `group ${s.entry.group}${s.entry.worker ? ` on ${String(s.entry.worker).split("/")[0]}` : ""}`;
          g.setAttribute("data-group", s.entry.group);
          g.setAttribute("data-worker", s.entry.worker || "");
        }
        const bar = svg("rect", { x: bx, y: y + 3, width: bw, height: ROW - 8, rx: 3, class: "tl-bar",
          "data-compute": s.entry ? s.entry.compute : null });
        bar.append(svg("title", {}, `${s.name}: ${s.status}, ${secondsText((s.end - s.start) / 1000)} ${where}`));
        g.append(bar);
        const seconds = (s.end - s.start) / 1000;
        g.setAttribute("data-seconds", seconds.toFixed(3));
        const label = s.status === "running" ? `${secondsText(seconds)}\u2026` : secondsText(seconds);
        g.append(svg("text", { x: WIDTH - RIGHT + 6, y: y + 14, class: "tl-duration" }, label));
      } else {
        g.append(svg("text", { x: WIDTH - RIGHT + 6, y: y + 14, class: "tl-duration" }, s.status));
      }
      root.append(g);
    });
    container.replaceChildren(root);
    return spans.length;
  }

  // A fanned-out job's groups (docs/fan-out.md), one lane each on a shared time axis: when
  // its worker ran it, its status, nodes done and the node running now, and which worker.
  // Lanes of groups that run at once overlap on the axis: that is the side by side. A running
  // group's bar grows to "now" at each refresh. Returns the number of lanes drawn.
  function renderGroups(container, job, now) {
    const plan = new Map(((job.fan_out || {}).groups || []).map((g) => [g.id, g]));
    const lanes = Object.entries(job.groups || {}).map(([id, run]) => ({ id, run, plan: plan.get(id) || {} }));
    const t = (iso) => (iso ? new Date(iso).getTime() : null);
    const nowMs = (now || new Date()).getTime();
    for (const lane of lanes) {
      lane.start = t(lane.run.started_at);
      lane.end = t(lane.run.ended_at);
      if (lane.start !== null && lane.end === null && lane.run.status === "running") lane.end = Math.max(lane.start, nowMs);
    }
    const starts = lanes.map((l) => l.start).filter((v) => v !== null);
    const ends = lanes.map((l) => l.end).filter((v) => v !== null);
    const t0 = starts.length ? Math.min(...starts) : t(job.started_at) || nowMs;
    const t1 = Math.max(ends.length ? Math.max(...ends) : t0, t0 + 1000);
    const span = t1 - t0;
    const plot = WIDTH - LABEL - RIGHT;
    const x = (ms) => LABEL + ((ms - t0) / span) * plot;
    const height = ROW * (lanes.length + 1) + 8;
    const root = svg("svg", { viewBox: `0 0 ${WIDTH} ${height}`, width: "100%", class: "timeline-svg groups-svg",
      role: "img", "aria-label": "groups timeline" });
    root.append(svg("text", { x: LABEL, y: 12, class: "tl-axis" }, "0 s"));
    root.append(svg("text", { x: WIDTH - RIGHT, y: 12, class: "tl-axis", "text-anchor": "end" }, secondsText(span / 1000)));
    lanes.forEach((lane, i) => {
      const y = ROW * (i + 1);
      const { run } = lane;
      const status = run.status || "pending";
      const name = lane.plan.name ? `${lane.id} \u00b7 ${lane.plan.name}` : lane.id;
      // Its worker without the claim's token; a Fargate task by its id, after "fargate".
      let worker = String(run.worker || "").replace(/\/[^/]*$/, "");
      if (worker.startsWith("arn:")) worker = worker.slice(worker.lastIndexOf("/") + 1);
      if (worker && run.compute && run.compute !== "lambda") worker = `${run.compute} ${worker}`;
      const g = svg("g", { class: `tl-row tl-lane tl-${status}`, "data-group": lane.id, "data-state": status,
        "data-worker": run.worker || "", "data-done": `${run.completed_nodes || 0}/${run.nodes || 0}` });
      const nodes = (lane.plan.nodes || []).join(", ");
      g.append(svg("title", {}, `${name}: ${status}${nodes ? ` (${nodes})` : ""}${run.worker ? ` on ${run.worker}` : ""}`));
      g.append(svg("text", { x: LABEL - 6, y: y + 14, "text-anchor": "end", class: "tl-name" }, short(name, 28)));
      if (lane.start !== null && lane.end !== null) {
        const bx = x(lane.start);
        g.append(svg("rect", { x: bx, y: y + 2, width: Math.max(2, x(lane.end) - bx), height: ROW - 6, rx: 3,
          class: "tl-bar tl-lane-bar" }));
        const seconds = (lane.end - lane.start) / 1000;
        g.setAttribute("data-seconds", seconds.toFixed(3));
        let what = `${run.completed_nodes || 0}/${run.nodes || 0}`;
        if (run.current_node) what += ` ${run.current_node}`;
        if (worker) what += ` \u00b7 ${short(worker, 24)}`;
        if ((run.runs || 0) > 1) what += ` \u00b7 run ${run.runs}`;
        // Text left of the middle starts at the bar; a lane starting late ends its text there.
        const right = bx > LABEL + plot / 2;
        g.append(svg("text", { x: right ? x(lane.end) - 4 : bx + 4, y: y + 14, class: "tl-lane-text",
          "text-anchor": right ? "end" : "start" }, what));
        const label = status === "running" ? `${secondsText(seconds)}\u2026` : secondsText(seconds);
        g.append(svg("text", { x: WIDTH - RIGHT + 6, y: y + 14, class: "tl-duration" }, label));
      } else {
        g.append(svg("text", { x: WIDTH - RIGHT + 6, y: y + 14, class: "tl-duration" }, status));
      }
      root.append(g);
    });
    container.replaceChildren(root);
    return lanes.length;
  }

  return { render, renderGroups, secondsText };
})();
