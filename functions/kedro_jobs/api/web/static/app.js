// kedro-jobs web page: plain JS, no build step. Every value from the API is user data (job
// parameters, logs, pipeline and node names), so the DOM is built with createElement and
// textContent only; nothing from the API is ever parsed as HTML.
"use strict";

(() => {
  const API = "api/v1"; // relative: the page and the API are served by the same function
  const TOKEN_KEY = "kedro-jobs.token";
  const PAGE_SIZE = 25;
  const POLL_MS = 2000;
  // A list where nothing runs is asked less often: each ask is a Lambda invocation.
  const IDLE_POLL_MS = 10000;
  const STATUSES = ["pending", "running", "completed", "failed", "cancelled"];
  const TERMINAL = new Set(["completed", "failed", "cancelled"]);
  const OPTION_LISTS = [
    "tags", "node_names", "from_nodes", "to_nodes", "from_inputs", "to_outputs", "namespaces",
  ];

  const $ = (id) => document.getElementById(id);

  // --- DOM helpers (text only) ---------------------------------------------------------------

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === undefined || value === null) continue;
      if (key === "text") node.textContent = String(value);
      else if (key === "class") node.className = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(key, String(value));
    }
    for (const child of children) {
      if (child !== undefined && child !== null) node.append(child); // strings become text nodes
    }
    return node;
  }

  function setText(id, value) {
    $(id).textContent = value === undefined || value === null ? "" : String(value);
  }

  function pretty(value) {
    return JSON.stringify(value, null, 2);
  }

  function statusBadge(status, node) {
    const badge = node || el("span");
    badge.className = "status" + (STATUSES.includes(status) ? ` status-${status}` : "");
    badge.textContent = String(status);
    return badge;
  }

  function pad(n) {
    return String(n).padStart(2, "0");
  }

  function fmtTime(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return String(iso);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
      `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())} ${zone(d)}`;
  }

  // The browser's time zone, as an offset ("UTC", "UTC+01:00"): times are local, and say so.
  function zone(d) {
    const offset = -d.getTimezoneOffset();
    if (offset === 0) return "UTC";
    const a = Math.abs(offset);
    return `UTC${offset > 0 ? "+" : "-"}${pad(Math.floor(a / 60))}:${pad(a % 60)}`;
  }

  function fmtSeconds(seconds) {
    if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "";
    if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 2 : 1)} s`;
    const m = Math.floor(seconds / 60);
    return `${m}m ${pad(Math.floor(seconds - m * 60))}s`;
  }

  function duration(job) {
    if (typeof job.execution_time === "number") return fmtSeconds(job.execution_time);
    if (job.started_at && !TERMINAL.has(job.status)) {
      return fmtSeconds((Date.now() - new Date(job.started_at).getTime()) / 1000);
    }
    return "";
  }

  function fmtBytes(size) {
    if (typeof size !== "number") return "";
    const units = ["B", "KB", "MB", "GB", "TB"];
    let value = size;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit += 1;
    }
    return `${unit ? value.toFixed(1) : value} ${units[unit]}`;
  }

  // A link from the API is used only if it is http(s) or a path on this site: never a
  // javascript: or data: URL.
  function safeHref(url) {
    try {
      const parsed = new URL(String(url), document.baseURI);
      return parsed.protocol === "https:" || parsed.protocol === "http:" ? parsed.href : null;
    } catch {
      return null;
    }
  }

  // --- API -----------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, detail) {
      super(describeDetail(detail));
      this.status = status;
      this.detail = detail;
    }
  }

  // FastAPI's `detail`: one sentence, or a list of field errors.
  function describeDetail(detail) {
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail)) {
      return detail
        .map((e) => (e && e.msg ? `${(e.loc || []).join(".")}: ${e.msg}` : JSON.stringify(e)))
        .join("; ");
    }
    return detail === undefined ? "" : JSON.stringify(detail);
  }

  function token() {
    return sessionStorage.getItem(TOKEN_KEY) || "";
  }

  async function api(path, options = {}) {
    const headers = { Accept: options.text ? "text/plain" : "application/json" };
    if (token()) headers.Authorization = `Bearer ${token()}`;
    const init = { method: options.method || "GET", headers, cache: "no-store" };
    // Every change is refused without JSON or this header (no cross-site form can send it).
    if (init.method !== "GET") headers["X-Kedro-Jobs-Client"] = "web";
    if (options.body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(options.body);
    }
    let response;
    try {
      response = await fetch(`${API}${path}`, init);
    } catch (error) {
      throw new ApiError(0, `The API could not be reached (${error.message})`);
    }
    if (!response.ok) {
      let detail = response.statusText;
      try {
        detail = (await response.json()).detail;
      } catch {
        // not JSON: keep the status text
      }
      if (response.status === 401 || response.status === 403) {
        showBanner(`The API refused the request (${response.status}): `, "set a token", "#/token");
      }
      throw new ApiError(response.status, detail);
    }
    return options.text ? response.text() : response.json();
  }

  const pipelineCache = new Map();

  async function pipelineInfo(name) {
    if (!pipelineCache.has(name)) {
      pipelineCache.set(name, api(`/pipelines/${encodeURIComponent(name)}`).catch(() => null));
    }
    return pipelineCache.get(name);
  }

  function showBanner(message, linkText, href) {
    const banner = $("banner");
    banner.replaceChildren(message);
    if (linkText) banner.append(el("a", { href, text: linkText }));
    banner.hidden = false;
  }

  function hideBanner() {
    $("banner").hidden = true;
  }

  // --- Views and polling ---------------------------------------------------------------------

  // Each navigation starts a new generation; late answers for an older view are dropped.
  let generation = 0;
  let timer = null;

  function poll(gen, fn, delay = POLL_MS) {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      if (gen !== generation) return;
      if (document.hidden) {
        poll(gen, fn, delay); // no requests from a tab nobody is looking at
        return;
      }
      await fn();
    }, delay);
  }

  function parseHash() {
    const raw = location.hash.replace(/^#/, "") || "/jobs";
    const [path, query] = raw.split("?");
    return { parts: path.split("/").filter(Boolean), query: new URLSearchParams(query || "") };
  }

  function showView(name) {
    for (const view of document.querySelectorAll(".view")) view.hidden = view.id !== `${name}-view`;
    for (const link of document.querySelectorAll("[data-nav]")) {
      link.classList.toggle("active", link.dataset.nav === name);
    }
  }

  function route() {
    generation += 1;
    clearTimeout(timer);
    hideBanner();
    const { parts, query } = parseHash();
    if (parts[0] === "jobs" && parts[1]) {
      showView("job");
      openJob(decodeURIComponent(parts[1]), generation);
    } else if (parts[0] === "submit") {
      showView("submit");
      openSubmit(query.get("pipeline"), generation);
    } else if (parts[0] === "schedules") {
      showView("schedules"); // schedules.js
      if (window.kedroSchedules) window.kedroSchedules.open(generation);
    } else if (parts[0] === "token") {
      showView("token");
      openToken();
    } else {
      showView("jobs");
      openJobs(query, generation);
    }
  }

  // --- The jobs list -------------------------------------------------------------------------

  const list = { key: null, cursors: [null], index: 0, next: null };
  let firstListRendered = false;

  async function fillPipelineFilter(selected) {
    const select = $("filter-pipeline");
    if (select.dataset.loaded !== "1") {
      try {
        const { pipelines } = await api("/pipelines");
        select.replaceChildren(el("option", { value: "", text: "any" }));
        for (const p of pipelines) select.append(el("option", { value: p.name, text: p.name }));
        select.dataset.loaded = "1";
      } catch {
        // the filter still works for the pipeline in the address
      }
    }
    if (selected && ![...select.options].some((o) => o.value === selected)) {
      select.append(el("option", { value: selected, text: selected }));
    }
    select.value = selected || "";
  }

  function openJobs(query, gen) {
    const status = query.get("status") || "";
    const pipeline = query.get("pipeline") || "";
    const key = `${status}\n${pipeline}`;
    if (list.key !== key) Object.assign(list, { key, cursors: [null], index: 0, next: null });
    $("filter-status").value = STATUSES.includes(status) ? status : "";
    fillPipelineFilter(pipeline);
    loadJobs(gen, status, pipeline);
  }

  async function loadJobs(gen, status, pipeline) {
    const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (status) params.set("status", status);
    if (pipeline) params.set("pipeline_name", pipeline);
    const cursor = list.cursors[list.index];
    if (cursor) params.set("cursor", cursor);
    let delay = IDLE_POLL_MS;
    try {
      const page = await api(`/jobs?${params}`);
      if (gen !== generation) return;
      list.next = page.next_cursor;
      renderJobs(page.jobs);
      hideBanner();
      if (page.jobs.some((job) => !TERMINAL.has(job.status))) delay = POLL_MS;
    } catch (error) {
      if (gen !== generation) return;
      if (error.status !== 401 && error.status !== 403) showBanner(`Jobs: ${error.message}`);
    }
    poll(gen, () => loadJobs(gen, status, pipeline), delay);
  }

  function progressCell(job) {
    const bar = el("progress", { max: 1, value: 0 });
    const p = job.progress;
    let text = "";
    if (job.status === "completed") {
      bar.value = 1;
    } else if (p && p.total_nodes) {
      bar.max = p.total_nodes;
      bar.value = p.completed_nodes;
      text = `${p.completed_nodes}/${p.total_nodes}`;
      if (job.status === "running" && p.current_node) text += ` ${p.current_node}`;
    } else if (job.status === "running") {
      bar.removeAttribute("value"); // indeterminate until the first report
    }
    return el("td", { class: "progress" }, bar, el("span", { class: "progress-text muted", text }));
  }

  function jobRow(job) {
    const link = el("a", { href: `#/jobs/${encodeURIComponent(job.id)}`, title: job.id },
      el("code", { text: job.id.slice(0, 8) }));
    return el("tr", { dataset: { jobId: job.id, status: job.status } },
      el("td", {}, statusBadge(job.status)),
      el("td", { text: job.pipeline_name }),
      el("td", { class: "id" }, link),
      el("td", { text: fmtTime(job.created_at) }),
      el("td", { text: duration(job) }),
      progressCell(job));
  }

  function renderJobs(jobs) {
    $("jobs-body").replaceChildren(...jobs.map(jobRow));
    $("jobs-empty").hidden = jobs.length > 0;
    $("page-newer").disabled = list.index === 0;
    $("page-older").disabled = !list.next;
    setText("page-info", `Page ${list.index + 1}`);
    if (!firstListRendered) {
      firstListRendered = true;
      performance.mark("kedro-jobs:list-rendered"); // read by the browser test
    }
  }

  function setListFilter(name, value) {
    const { query } = parseHash();
    if (value) query.set(name, value);
    else query.delete(name);
    const qs = query.toString();
    location.hash = `#/jobs${qs ? `?${qs}` : ""}`;
  }

  $("filter-status").addEventListener("change", (e) => setListFilter("status", e.target.value));
  $("filter-pipeline").addEventListener("change", (e) => setListFilter("pipeline", e.target.value));
  $("page-older").addEventListener("click", () => {
    if (!list.next) return;
    list.cursors[list.index + 1] = list.next;
    list.index += 1;
    route();
  });
  $("page-newer").addEventListener("click", () => {
    if (list.index === 0) return;
    list.index -= 1;
    route();
  });

  // --- One job -------------------------------------------------------------------------------

  let currentJob = null;

  // The nodes a job runs: Kedro keeps the nodes that pass every run option's filter (each
  // applied to the whole pipeline), in the pipeline's order.
  function runNodes(nodes, options) {
    const given = (name) => Array.isArray(options[name]) && options[name].length > 0;
    const producers = new Map();
    for (const n of nodes) for (const out of n.outputs) producers.set(out, n);
    const downstream = (start) => {
      const seen = new Set(start);
      let frontier = [...start];
      while (frontier.length) {
        const made = new Set(frontier.flatMap((n) => n.outputs));
        frontier = nodes.filter((n) => !seen.has(n) && n.inputs.some((i) => made.has(i)));
        frontier.forEach((n) => seen.add(n));
      }
      return seen;
    };
    const upstream = (start) => {
      const seen = new Set(start);
      let frontier = [...start];
      while (frontier.length) {
        frontier = frontier
          .flatMap((n) => n.inputs.map((i) => producers.get(i)))
          .filter((n) => n && !seen.has(n));
        frontier.forEach((n) => seen.add(n));
      }
      return seen;
    };
    const inNamespace = (n, ns) => n.namespace === ns || (n.namespace || "").startsWith(`${ns}.`);
    const subsets = [];
    if (given("tags")) subsets.push(new Set(nodes.filter((n) => n.tags.some((t) => options.tags.includes(t)))));
    if (given("node_names")) subsets.push(new Set(nodes.filter((n) => options.node_names.includes(n.name))));
    if (given("namespaces")) subsets.push(new Set(nodes.filter((n) => options.namespaces.some((ns) => inNamespace(n, ns)))));
    if (given("from_nodes")) subsets.push(downstream(nodes.filter((n) => options.from_nodes.includes(n.name))));
    if (given("to_nodes")) subsets.push(upstream(nodes.filter((n) => options.to_nodes.includes(n.name))));
    if (given("from_inputs")) subsets.push(downstream(nodes.filter((n) => n.inputs.some((i) => options.from_inputs.includes(i)))));
    if (given("to_outputs")) subsets.push(upstream(nodes.filter((n) => n.outputs.some((o) => options.to_outputs.includes(o)))));
    return nodes.filter((n) => subsets.every((s) => s.has(n)));
  }

  // Nodes run one at a time in the pipeline's order: the first `completed_nodes` are done,
  // which holds only when our list is the run's own (its length is `total_nodes`).
  function nodeStates(job, names) {
    const p = job.progress || {};
    const completed = p.completed_nodes || 0;
    const exact = names.length === (p.total_nodes || 0);
    // A failed run names its node in the error ("... (node: name)") when progress does not.
    const named = /\(node: ([^)]+)\)\s*$/.exec(job.error_message || "");
    const failed = job.status === "failed" ? p.current_node || (named && named[1]) : null;
    const failedAt = failed ? names.indexOf(failed) : -1;
    return names.map((name, i) => {
      if (job.status === "completed") return "done";
      if (i === failedAt) return "failed";
      if ((exact && i < completed) || i < failedAt) return "done";
      if (job.status === "running" && name === p.current_node) return "running";
      return TERMINAL.has(job.status) ? "skipped" : "pending";
    });
  }

  function renderNodes(job, info) {
    const p = job.progress || {};
    const names = info
      ? runNodes(info.nodes, job.options || {}).map((n) => n.name)
      : (p.current_node ? [p.current_node] : []);
    const states = job.groups && job.fan_out ? groupNodeStates(job, names) : nodeStates(job, names);
    $("job-nodes").replaceChildren(...names.map((name, i) =>
      el("li", { class: states[i], dataset: { node: name, state: states[i] }, text: name })));
    renderTimeline(job, names, states);
    renderGroups(job);
    renderGraph(job, info, names, states);
  }

  // A fanned-out job runs several nodes at once: a node's state comes from its group's entry
  // (the group's nodes run in the plan's order, its first `completed_nodes` are done).
  function groupNodeStates(job, names) {
    const byNode = new Map();
    for (const g of job.fan_out.groups || []) {
      const run = job.groups[g.id] || {};
      g.nodes.forEach((name, i) => {
        let state = run.status === "running" || run.status === "pending" ? "pending" : "skipped";
        if (run.status === "completed" || i < (run.completed_nodes || 0)) state = "done";
        else if (run.status === "running" && name === run.current_node) state = "running";
        else if (run.status === "failed" && i === (run.completed_nodes || 0)) state = "failed";
        byNode.set(name, state);
      });
    }
    return names.map((name) => {
      if (job.status === "completed") return "done";
      const state = byNode.get(name) || "pending";
      // A group the ended job never started did not run.
      return state === "pending" && TERMINAL.has(job.status) ? "skipped" : state;
    });
  }

  // A fanned-out job's groups, one lane each (timeline.js), redrawn at each refresh.
  function renderGroups(job) {
    const box = $("job-groups-box");
    const groups = Object.values(job.groups || {});
    box.hidden = !window.kedroJobsTimeline || !groups.length;
    if (box.hidden) return;
    window.kedroJobsTimeline.renderGroups($("job-groups"), job);
    const running = groups.filter((g) => g.status === "running").length;
    setText("job-groups-note", `(fanned out: ${groups.length} groups, each on a worker of its own` +
      `${running ? `; ${running} running now` : ""})`);
  }

  // The node timeline (timeline.js): the record's `nodes` with their times; the manifest's
  // run order gives the nodes not reached yet.
  function renderTimeline(job, names, states) {
    const box = $("job-timeline-box");
    const timeline = window.kedroJobsTimeline;
    box.hidden = !timeline || !(job.nodes && job.nodes.length);
    if (box.hidden) return;
    const rows = names.map((name, i) => ({ name, state: states[i] }));
    timeline.render($("job-timeline"), job, rows);
    let eta = "";
    if (job.status === "running" && job.eta) {
      const left = (new Date(job.eta).getTime() - Date.now()) / 1000;
      eta = left > 0
        ? `(about ${fmtSeconds(left)} left, from past runs: ends ~${fmtTime(job.eta)})`
        : "(taking longer than past runs: no time left can be estimated)";
    }
    setText("job-eta", eta);
  }

  // The pipeline's graph (graph.js), each node of this run in its state.
  function renderGraph(job, info, names, states) {
    const box = $("job-graph-box");
    box.hidden = !window.kedroJobsGraph || !info || !info.nodes.length;
    if (box.hidden) return;
    const byName = new Map(names.map((name, i) => [name, states[i]]));
    // A node the run options left out of this run is not pending: it does not run.
    for (const n of info.nodes) if (!byName.has(n.name)) byName.set(n.name, "skipped");
    window.kedroJobsGraph.render($("job-graph"), info.nodes, byName);
  }

  function renderProgress(job) {
    const bar = $("job-progress");
    const p = job.progress;
    let text = "";
    if (job.status === "completed") {
      bar.max = 1;
      bar.value = 1;
      text = p && p.total_nodes ? `${p.total_nodes}/${p.total_nodes} nodes` : "done";
    } else if (p && p.total_nodes) {
      bar.max = p.total_nodes;
      bar.value = p.completed_nodes;
      text = `${p.completed_nodes}/${p.total_nodes} nodes`;
      if (p.current_node && job.status === "running") text += `, running ${p.current_node}`;
    } else {
      bar.max = 1;
      if (job.status === "running") bar.removeAttribute("value");
      else bar.value = 0;
      text = job.status === "pending" ? "waiting for a consumer" : "";
    }
    setText("job-progress-text", text);
  }

  function renderSummary(job) {
    const rows = [
      ["Pipeline", job.pipeline_name],
      ["Created", fmtTime(job.created_at)],
      ["Started", fmtTime(job.started_at)],
      ["Finished", fmtTime(job.completed_at)],
      ["Duration", duration(job)],
      ["Attempts", attemptsText(job)],
      ["Ran on", ranOn(job)],
      ["Source", job.source],
      ["User", job.user_id],
    ];
    const dl = $("job-summary");
    dl.replaceChildren();
    for (const [name, value] of rows) {
      if (value === "" || value === null || value === undefined) continue;
      dl.append(el("dt", { text: name }), el("dd", { text: value }));
    }
    if (job.retry_of) {
      dl.append(el("dt", { text: "Retry of" }), el("dd", {},
        el("a", { href: `#/jobs/${encodeURIComponent(job.retry_of)}`, text: job.retry_of })));
    }
    if (job.cancel_requested && !TERMINAL.has(job.status)) {
      dl.append(el("dt", { text: "Cancel" }), el("dd", { text: "requested: stops at the next node" }));
    }
    // Rerun from failure: the nodes reused from the stopped job, or until when it may be rerun.
    if (job.reused_from) {
      const reused = (job.nodes || []).filter((n) => n.status === "reused").length + (job.nodes_omitted || 0);
      dl.append(el("dt", { text: "Reused from" }), el("dd", {},
        el("a", { href: `#/jobs/${encodeURIComponent(job.reused_from)}`, text: job.reused_from }),
        ` (${reused} node${reused === 1 ? "" : "s"} not run again)`));
    } else if (rerunnable(job)) {
      dl.append(el("dt", { text: "Rerun" }), el("dd", {
        text: `its completed nodes' outputs are kept until ${fmtTime(job.reusable_until)}` }));
    }
  }

  // A stopped job that kept its completed nodes' outputs, not expired yet (the API decides).
  function rerunnable(job) {
    return (job.status === "failed" || job.status === "cancelled") && Boolean(job.reusable_until)
      && Date.parse(job.reusable_until) > Date.now();
  }

  // Claims of the job by a consumer: a run that goes on in another invocation or on Fargate
  // is one more claim but not a retry; only a consumer lost mid-run (its lease expired) makes
  // a claim that starts over. A user's retry is a new job ("Retry of").
  function attemptsText(job) {
    const claims = job.attempts || 0;
    if (!claims) return "";
    const goOns = job.continuations || 0;
    const lost = Math.max(0, claims - goOns - 1);
    const parts = [`${claims} claim${claims === 1 ? "" : "s"} by a consumer`];
    if (goOns) parts.push(`${goOns} went on from a checkpoint (another invocation or Fargate), not a retry`);
    if (lost) parts.push(`${lost} after a consumer was lost mid-run`);
    return parts.join("; ");
  }

  // "lambda, 3 segments: step1 | step2 | step3": where a run longer than one invocation went.
  function ranOn(job) {
    const segments = job.segments || [];
    if (segments.length < 2 && (job.compute || "lambda") === "lambda") return "";
    const nodes = segments.map((s) => (s.nodes || []).join(", ") || "-").join(" | ");
    return segments.length ? `${job.compute}, ${segments.length} segment(s): ${nodes}` : job.compute;
  }

  function renderJob(job, info) {
    currentJob = job;
    setText("job-id", job.id);
    statusBadge(job.status, $("job-status"));
    $("job-cancel").disabled = TERMINAL.has(job.status) || job.cancel_requested;
    $("job-retry").disabled = !TERMINAL.has(job.status);
    $("job-rerun").hidden = !rerunnable(job);
    $("job-rerun").disabled = !rerunnable(job);
    renderSummary(job);
    renderProgress(job);
    renderNodes(job, info);
    $("job-error-box").hidden = !job.error_message;
    setText("job-error", job.error_message);
    setText("job-parameters", pretty(job.parameters || {}));
    setText("job-options", pretty(job.options || {}));
    renderResults(job);
  }

  // Results: text values of several lines (a markdown report) shown as text, the rest as
  // JSON; no Results box for a job that ended without any.
  function renderResults(job) {
    const has = job.results !== null && job.results !== undefined;
    const texts = [];
    let rest = job.results;
    if (has && typeof job.results === "object" && !Array.isArray(job.results)) {
      rest = {};
      for (const [key, value] of Object.entries(job.results)) {
        if (typeof value === "string" && value.includes("\n")) texts.push([key, value]);
        else rest[key] = value;
      }
      if (!Object.keys(rest).length && texts.length) rest = undefined;
    }
    $("job-results-text").replaceChildren(...texts.map(([key, value]) =>
      el("div", { class: "result-text", dataset: { result: key } },
        el("h3", { text: key }), el("pre", { class: "text-result", text: value }))));
    let results = "";
    if (has && rest !== undefined) results = pretty(rest);
    else if (job.results_location) results = `Too large for the record: ${job.results_location}`;
    else if (!TERMINAL.has(job.status)) results = "(when the job has finished)";
    setText("job-results", results);
    $("job-results").hidden = !results;
    $("job-results-box").hidden = !results && !texts.length;
  }

  function outputRow(output, withLink) {
    let where = el("code", { text: output.uri || "" });
    const href = withLink ? safeHref(output.url) : null;
    if (href) {
      where = el("a", { href, target: "_blank", rel: "noopener noreferrer", class: "download",
        dataset: { output: output.name }, text: "download" });
    }
    return el("tr", { dataset: { output: output.name } },
      el("td", {}, el("code", { text: output.name })),
      el("td", { text: output.type || "" }),
      el("td", { text: output.version || "" }),
      el("td", { text: fmtBytes(output.size) }),
      el("td", {}, where));
  }

  async function loadOutputs(job, gen) {
    let outputs = job.outputs || [];
    let withLinks = false;
    let note = "";
    try {
      outputs = (await api(`/jobs/${encodeURIComponent(job.id)}/outputs`)).outputs || [];
      withLinks = true;
    } catch (error) {
      // No outputs route on this API (or nothing yet): the record's list, without links.
      if (error.status !== 404) note = `Outputs: ${error.message}`;
    }
    if (gen !== generation) return;
    $("job-outputs").replaceChildren(...outputs.map((o) => outputRow(o, withLinks)));
    $("job-outputs").closest("table").hidden = outputs.length === 0;
    if (!note && !outputs.length) {
      note = TERMINAL.has(job.status) ? "This run saved no datasets." : "(when the job has finished)";
    }
    if (!note && job.outputs_location && !withLinks) note = `Full list: ${job.outputs_location}`;
    setText("job-outputs-note", note);
  }

  async function loadLog(job, gen) {
    const pre = $("job-log");
    let text;
    try {
      text = await api(`/jobs/${encodeURIComponent(job.id)}/logs`, { text: true });
    } catch (error) {
      text = error.status === 404 ? "(no log yet)" : `(log unavailable: ${error.message})`;
    }
    if (gen !== generation || pre.textContent === text) return;
    pre.textContent = text;
    if ($("log-follow").checked) pre.scrollTop = pre.scrollHeight;
  }

  async function openJob(id, gen) {
    // Nothing from the job shown before stays: its status, and actions enabled for it (a
    // click on them would do nothing until this job's answer is drawn).
    currentJob = null;
    setText("job-id", id);
    statusBadge("", $("job-status"));
    for (const b of ["job-cancel", "job-retry", "job-rerun"]) $(b).disabled = true;
    setText("job-message", "");
    $("job-message").hidden = true;
    for (const node of ["job-summary", "job-nodes", "job-outputs"]) $(node).replaceChildren();
    for (const node of ["job-parameters", "job-options", "job-results", "job-log", "job-outputs-note"]) setText(node, "");
    $("job-error-box").hidden = true;
    for (const box of ["job-timeline-box", "job-graph-box", "job-groups-box"]) $(box).hidden = true;
    for (const drawing of ["job-timeline", "job-graph", "job-groups"]) $(drawing).replaceChildren();
    $("job-results-text").replaceChildren();
    $("job-outputs").closest("table").hidden = true;
    refreshJob(id, gen, null);
  }

  async function refreshJob(id, gen, previousStatus) {
    let job;
    try {
      job = await api(`/jobs/${encodeURIComponent(id)}`);
    } catch (error) {
      if (gen !== generation) return;
      if (error.status === 404) {
        showBanner(`Job ${id}: ${error.message}`);
        return;
      }
      if (error.status !== 401 && error.status !== 403) showBanner(`Job ${id}: ${error.message}`);
      poll(gen, () => refreshJob(id, gen, previousStatus));
      return;
    }
    if (gen !== generation) return;
    const info = await pipelineInfo(job.pipeline_name);
    if (gen !== generation) return;
    renderJob(job, info);
    const finished = TERMINAL.has(job.status);
    // Logs while it runs (followed); log and outputs once more when it has just finished.
    if (!finished) {
      await loadLog(job, gen);
      setText("job-outputs-note", "(when the job has finished)");
    } else if (previousStatus !== job.status) {
      await Promise.all([loadLog(job, gen), loadOutputs(job, gen)]);
    }
    if (!finished) poll(gen, () => refreshJob(id, gen, job.status));
  }

  async function jobAction(action) {
    if (!currentJob) return;
    const gen = generation;
    const id = currentJob.id;
    const message = $("job-message");
    for (const b of ["job-cancel", "job-retry", "job-rerun"]) $(b).disabled = true;
    try {
      const rerun = action === "rerun";  // a retry that reuses what the completed nodes made
      const job = await api(`/jobs/${encodeURIComponent(id)}/${rerun ? "retry" : action}`,
        rerun ? { method: "POST", body: { from_failure: true } } : { method: "POST" });
      if (gen !== generation) return;
      if (action === "retry" || rerun) {
        location.hash = `#/jobs/${encodeURIComponent(job.id)}`;
        return;
      }
      message.textContent = job.status === "cancelled" ? "Cancelled." : "Cancel requested: the job stops at the next node.";
      message.hidden = false;
      refreshJob(id, gen, null);
    } catch (error) {
      if (gen !== generation) return;
      const what = { retry: "Retry", rerun: "Rerun from failure", cancel: "Cancel" }[action];
      message.textContent = `${what} refused: ${error.message}`;
      message.hidden = false;
      refreshJob(id, gen, null);
    }
  }

  $("job-cancel").addEventListener("click", () => jobAction("cancel"));
  $("job-retry").addEventListener("click", () => jobAction("retry"));
  $("job-rerun").addEventListener("click", () => jobAction("rerun"));

  // --- Submit form ---------------------------------------------------------------------------

  let pipelines = [];

  function chips(id, items, tag = "li") {
    $(id).replaceChildren(...items.map((item) => el(tag, { text: item })));
  }

  // The parameters box starts from the pipeline's defaults (the manifest's, from the
  // project's parameters.yml); it keeps what the user typed until the pipeline changes.
  function defaultsText(name) {
    const info = pipelines.find((p) => p.name === name);
    return pretty((info && info.parameter_defaults) || {});
  }

  let formDefaults = "{}"; // what the box held when it was last filled in for the user

  function fillDefaults(name) {
    formDefaults = defaultsText(name);
    $("submit-parameters").value = formDefaults;
  }

  function showPipeline(name) {
    const info = pipelines.find((p) => p.name === name);
    $("pipeline-info").hidden = !info;
    if (!info) return;
    chips("pipeline-parameters", info.parameters);
    chips("pipeline-nodes", info.nodes.map((n) => n.name));
    chips("pipeline-inputs", info.inputs);
    chips("pipeline-outputs", info.outputs);
    $("node-list").replaceChildren(...info.nodes.map((n) => el("option", { value: n.name })));
  }

  // Where a job may run, from the compute backends' registry (GET /compute): a new backend
  // needs no change here. Read once; one this deployment does not offer is listed, disabled,
  // saying why.
  let computeOffers = null;

  async function fillCompute() {
    if (!computeOffers) computeOffers = (await api("/compute")).backends;
    const select = $("opt-compute");
    const keep = select.value;
    const option = (b) =>
      b.offered
        ? el("option", { value: b.name, text: `${b.name} (${b.description})` })
        : el("option", { value: b.name, text: `${b.name} (not offered here)`, title: b.reason, disabled: "" });
    select.replaceChildren(...computeOffers.map(option));
    const chosen =
      computeOffers.find((b) => b.offered && b.name === keep) || computeOffers.find((b) => b.default);
    if (chosen) select.value = chosen.name;
  }

  async function openSubmit(selected, gen) {
    const error = $("submit-error");
    error.hidden = true;
    try {
      await fillCompute();
    } catch (e) {
      // The form still submits: a job that names no compute runs on the default.
      if (gen !== generation) return;
      error.textContent = `Compute: ${e.message}`;
      error.hidden = false;
    }
    try {
      pipelines = (await api("/pipelines")).pipelines;
    } catch (e) {
      if (gen !== generation) return;
      error.textContent = `Pipelines: ${e.message}`;
      error.hidden = false;
      return;
    }
    if (gen !== generation) return;
    const select = $("submit-pipeline");
    const before = select.value;
    const keep = selected || before;
    // A pipeline whose name a job cannot take is listed, disabled, saying why.
    const option = (p) =>
      p.submittable === false
        ? el("option", { value: p.name, text: `${p.name} (cannot be submitted)`, title: p.reason, disabled: "" })
        : el("option", { value: p.name, text: p.name });
    select.replaceChildren(...pipelines.map(option));
    const open = pipelines.filter((p) => p.submittable !== false);
    if (keep && open.some((p) => p.name === keep)) select.value = keep;
    else if (open.length) select.value = open[0].name;
    if (before && select.value !== before) clearForm();
    // Untouched since it was filled in: it follows the (possibly newer) manifest's defaults.
    if ($("submit-parameters").value === formDefaults) fillDefaults(select.value);
    $("submit-button").disabled = open.length === 0;
    if (!pipelines.length) {
      error.textContent = "No pipelines yet: the consumer has not published the project's manifest.";
      error.hidden = false;
    }
    showPipeline(select.value);
  }

  // Node names may hold commas inside brackets (Kedro's generated names): split outside them.
  function splitList(text) {
    const items = [];
    let depth = 0;
    let item = "";
    for (const ch of `${text},`) {
      if (ch === "[") depth += 1;
      if (ch === "]") depth -= 1;
      if (ch === "," && depth <= 0) {
        if (item.trim()) items.push(item.trim());
        item = "";
      } else {
        item += ch;
      }
    }
    return items;
  }

  function readForm() {
    let parameters;
    try {
      parameters = JSON.parse($("submit-parameters").value.trim() || "{}");
    } catch (e) {
      throw new Error(`Parameter overrides are not valid JSON: ${e.message}`);
    }
    if (parameters === null || typeof parameters !== "object" || Array.isArray(parameters)) {
      throw new Error("Parameter overrides must be a JSON object, e.g. {\"n_rows\": 10}");
    }
    const body = { pipeline_name: $("submit-pipeline").value, parameters };
    for (const name of OPTION_LISTS) {
      const items = splitList($(`opt-${name}`).value);
      if (items.length) body[name] = items;
    }
    const versions = splitList($("opt-load_versions").value);
    if (versions.length) {
      body.load_versions = {};
      for (const pair of versions) {
        const at = pair.indexOf(":");
        if (at < 1) throw new Error(`Load versions: expected dataset:version, got ${JSON.stringify(pair)}`);
        body.load_versions[pair.slice(0, at).trim()] = pair.slice(at + 1).trim();
      }
    }
    const env = $("opt-env").value.trim();
    if (env) body.env = env;
    // A backend other than the default is sent; the default needs no word (as from the CLI).
    const compute = $("opt-compute").value;
    const fallback = (computeOffers || []).find((b) => b.default);
    if (compute && compute !== (fallback && fallback.name)) body.compute = compute;
    return body;
  }

  // Parameters and run options name one pipeline's nodes and datasets: a new pipeline starts
  // from a clean form.
  function clearForm() {
    fillDefaults($("submit-pipeline").value);
    for (const input of document.querySelectorAll("#submit-form [data-option]")) input.value = "";
    $("submit-error").hidden = true;
  }

  $("submit-pipeline").addEventListener("change", (e) => {
    clearForm();
    showPipeline(e.target.value);
  });
  $("submit-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = $("submit-error");
    const button = $("submit-button");
    error.hidden = true;
    let body;
    try {
      body = readForm();
    } catch (e) {
      error.textContent = e.message;
      error.hidden = false;
      return;
    }
    button.disabled = true;
    try {
      const job = await api("/jobs", { method: "POST", body });
      location.hash = `#/jobs/${encodeURIComponent(job.id)}`;
    } catch (e) {
      error.textContent = `Not submitted (${e.status || "network"}): ${e.message}`;
      error.hidden = false;
    } finally {
      button.disabled = false;
    }
  });

  // --- Token ---------------------------------------------------------------------------------

  function showTokenState() {
    setText("token-nav", token() ? "Token \u2713" : "Token");
    setText("token-state", token() ? "A token is set for this tab." : "No token set.");
  }

  function openToken() {
    $("token-input").value = "";
    showTokenState();
  }

  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = $("token-input").value.trim().replace(/^Bearer\s+/i, "");
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    $("token-input").value = "";
    showTokenState();
  });
  $("token-clear").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    showTokenState();
  });

  // --- Start ---------------------------------------------------------------------------------

  // What schedules.js (the Schedules tab) uses of this file.
  window.kedroJobs = { api, el, statusBadge, fmtTime, readForm, current: () => generation };

  window.addEventListener("hashchange", route);
  showTokenState();
  route();
})();
