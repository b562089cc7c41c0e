// kedro-jobs web page: the Schedules tab, and "Schedule it" on the submit form. Loaded after
// app.js, whose helpers it uses (window.kedroJobs). As there, every value from the API is
// user data: the DOM is built with createElement and textContent only.
"use strict";

(() => {
  const jobs = window.kedroJobs;
  if (!jobs) return;
  const { api, el, statusBadge, fmtTime } = jobs;
  const $ = (id) => document.getElementById(id);
  const REFRESH_MS = 10000;
  let timer = null;

  function action(label, run) {
    const button = el("button", { type: "button", text: label });
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        await run();
        await load(jobs.current());
      } catch (e) {
        showError(`${label} failed (${e.status || "network"}): ${e.message}`);
      } finally {
        button.disabled = false;
      }
    });
    return button;
  }

  function showError(message) {
    const box = $("schedules-error");
    box.textContent = message;
    box.hidden = !message;
  }

  function path(schedule, rest = "") {
    return `/schedules/${encodeURIComponent(schedule.name)}${rest}`;
  }

  function row(schedule) {
    const fires = (schedule.next_fires || []).slice(0, 3).map(fmtTime);
    const last = schedule.last_run;
    const lastCell = el("td");
    if (last) {
      lastCell.append(
        statusBadge(last.status),
        " ",
        el("a", { href: `#/jobs/${encodeURIComponent(last.id)}`, text: fmtTime(last.created_at) }),
      );
    } else {
      lastCell.textContent = "-";
    }
    const enabled = schedule.state === "enabled";
    const state = el("span", { text: schedule.state });
    state.className = `state ${schedule.state}`;
    const tr = el(
      "tr",
      {},
      el("td", {}, el("strong", { text: schedule.name })),
      el("td", {}, state),
      el("td", {}, el("code", { text: schedule.expression }), ` ${schedule.timezone}`),
      el("td", { text: schedule.job.pipeline_name }),
      el("td", { text: fires.join(", ") || "-" }),
      lastCell,
      el("td", { text: schedule.overlap }),
      el(
        "td",
        {},
        enabled
          ? action("Pause", () => api(path(schedule, "/pause"), { method: "POST" }))
          : action("Resume", () => api(path(schedule, "/resume"), { method: "POST" })),
        action("Run now", () => api(path(schedule, "/run"), { method: "POST" })),
        action("Delete", () => api(path(schedule), { method: "DELETE", text: true })),
      ),
    );
    tr.dataset.schedule = schedule.name;
    return tr;
  }

  async function load(gen) {
    if (gen !== jobs.current()) return;
    try {
      const page = await api("/schedules?limit=100");
      if (gen !== jobs.current()) return;
      $("schedules-body").replaceChildren(...page.schedules.map(row));
      $("schedules-empty").hidden = page.schedules.length > 0;
      showError("");
    } catch (e) {
      if (gen === jobs.current()) showError(`Schedules could not be loaded: ${e.message}`);
    }
  }

  function open(gen) {
    clearTimeout(timer);
    const tick = async () => {
      if (gen !== jobs.current()) return;
      if (!document.hidden) await load(gen);
      timer = setTimeout(tick, REFRESH_MS);
    };
    tick();
  }

  // "Schedule it" on the submit form: the form's job, on a cron, a rate or once.
  $("schedule-create").addEventListener("click", async () => {
    const error = $("submit-error");
    error.hidden = true;
    let body;
    try {
      body = {
        name: $("schedule-name").value.trim(),
        expression: $("schedule-expression").value.trim(),
        timezone: $("schedule-timezone").value.trim() || "UTC",
        overlap: $("schedule-overlap").value,
        job: jobs.readForm(),
      };
    } catch (e) {
      error.textContent = e.message;
      error.hidden = false;
      return;
    }
    try {
      await api("/schedules", { method: "POST", body });
      location.hash = "#/schedules";
    } catch (e) {
      error.textContent = `Not scheduled (${e.status || "network"}): ${e.message}`;
      error.hidden = false;
    }
  });

  window.kedroSchedules = { open };
  // app.js routed before this file loaded: open the tab if the page starts on it.
  if (location.hash.startsWith("#/schedules")) open(jobs.current());
})();
