"""Fan-out through `make dev`: moto's Step Functions runs the template's state machine, the
local consumers run a job's groups side by side, and the job completes with what a one-worker
run gives; ``fan_out: false`` runs it on one worker. What a user sees of it: the groups side by
side in `kedro-jobs status` and `--watch`, and one lane per group on the web page, live."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from kedro_jobs.core.states import TERMINAL
from kedro_jobs_local.dev_stack import LocalStack, running_local_stack
from tests.support.fanout_project import write_fanout_project

from .conftest import busy_consumers, until, wait_for

SCRIPT = Path(sys.executable).with_name("kedro-jobs")


@pytest.fixture(scope="module")
def fan_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """`make dev` with 3 consumers on a project whose pipelines fan out (every run of them:
    FAN_OUT_MIN_GROUP_SECONDS=0)."""
    root = tmp_path_factory.mktemp("fan-out")
    project = write_fanout_project(root / "project")
    env = {"KEDRO_PROJECT_PATH": str(project), "FAN_OUT_MIN_GROUP_SECONDS": "0"}
    with running_local_stack(root / "dev.log", workers=3, env=env) as stack:
        yield stack


def test_a_job_fans_out_over_the_local_consumers(fan_stack: LocalStack) -> None:
    with fan_stack.client() as api:
        fanned = api.post("/api/v1/jobs", json={"pipeline_name": "branches"}).json()
        alone = api.post(
            "/api/v1/jobs", json={"pipeline_name": "branches", "fan_out": False}
        ).json()
        fanned, alone = wait_for(api, fanned["id"]), wait_for(api, alone["id"])
        assert fanned["status"] == alone["status"] == "completed", fanned["error_message"]
        assert fanned["results"] == alone["results"] == {"summary": {"total": 9.0, "branches": 3}}
        groups = fanned["groups"]
        assert sorted(groups) == ["g1", "g2", "g3", "g4"]
        assert {g["status"] for g in groups.values()} == {"completed"}
        assert fanned["progress"]["completed_nodes"] == fanned["progress"]["total_nodes"] == 7
        assert alone["groups"] is None
        log = api.get(f"/api/v1/jobs/{fanned['id']}/logs").text
        assert "== group g4 (report) ==" in log


# --- The CLI -------------------------------------------------------------------------------------


def kedro_jobs(stack: LocalStack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "KEDRO_JOBS_API": stack.api, "COLUMNS": "160"},
        check=False,
    )


def group_rows(status_output: str) -> dict[str, list[str]]:
    """`kedro-jobs status`'s group table: by group id, the row's words (id, name, status,
    nodes done, ...)."""
    rows: dict[str, list[str]] = {}
    for line in status_output.splitlines():
        words = line.split()
        if words[:1] == ["groups"]:
            continue  # its header
        if len(words) >= 3 and words[0] in {"g1", "g2", "g3", "g4"}:
            rows[words[0]] = words
    return rows


def test_status_and_watch_show_the_groups_side_by_side(fan_stack: LocalStack) -> None:
    submitted = kedro_jobs(fan_stack, "submit", "branches", "--params", "pause=4", "--json")
    assert submitted.returncode == 0, submitted.stderr
    job_id = json.loads(submitted.stdout)["id"]
    watch = subprocess.Popen(
        [str(SCRIPT), "watch", job_id, "--interval", "0.3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "KEDRO_JOBS_API": fan_stack.api, "COLUMNS": "160"},
    )
    try:

        def two_running() -> dict[str, list[str]] | None:
            rows = group_rows(kedro_jobs(fan_stack, "status", job_id).stdout)
            running = [r for r in rows.values() if r[2] == "running" and len(r) > 5]
            # A running row names the node it runs now, then its worker.
            return rows if sum(r[4].startswith(("prep_", "fit_")) for r in running) >= 2 else None

        # Two branches at once, each on its worker, each with the node it runs now.
        rows = until("two groups running at once in `kedro-jobs status`", two_running, 60)
        running = [
            r for r in rows.values() if r[2] == "running" and r[4].startswith(("prep_", "fit_"))
        ]
        # A branch's group is named after its first node; it runs that branch's nodes.
        assert all(r[1] in {"prep_a", "prep_b", "prep_c"} and r[4][-1] == r[1][-1]
                   for r in running), rows  # fmt: skip
        assert len({r[5] for r in running}) == len(running)  # each on its own worker
        assert rows["g4"][1:3] == ["report", "pending"], rows
        out, err = watch.communicate(timeout=120)
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.wait()
    assert watch.returncode == 0, out + err
    # The watch ends with a bar per group: each completed, all its nodes, and its worker.
    lanes = [line for line in out.splitlines() if line.strip().startswith("group g")]
    assert [line.split()[1] for line in lanes] == ["g1", "g2", "g3", "g4"], out
    assert all(" completed 2/2 on " in line for line in lanes[:3]), out
    assert " completed 1/1 on " in lanes[3], out
    done = group_rows(kedro_jobs(fan_stack, "status", job_id).stdout)
    assert {r[2] for r in done.values()} == {"completed"}, done


# --- The web page ----------------------------------------------------------------------------


# The group lanes the page draws, by group id.
LANES_JS = """(() => {
  const lanes = {};
  for (const g of document.querySelectorAll('#job-groups g.tl-lane')) {
    const bar = g.querySelector('rect.tl-lane-bar');
    lanes[g.dataset.group] = {
      state: g.dataset.state, worker: g.dataset.worker, done: g.dataset.done,
      seconds: parseFloat(g.dataset.seconds || '0'),
      x: bar ? +bar.getAttribute('x') : null,
      end: bar ? +bar.getAttribute('x') + +bar.getAttribute('width') : null,
    };
  }
  return lanes;
})()"""
NODES_JS = "[...document.querySelectorAll('#job-nodes li')].map((li) => li.dataset.state)"


def lanes(driver: WebDriver) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = driver.execute_script(f"return {LANES_JS};")
    return found


def lanes_and_nodes(driver: WebDriver) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The lanes and the node list's states as one refresh drew them."""
    found, states = driver.execute_script(f"return [{LANES_JS}, {NODES_JS}];")
    return found, states


def test_the_web_page_draws_a_lane_per_group_live(
    browser: WebDriver, fan_stack: LocalStack, tmp_path: Path
) -> None:
    browser.get_log("browser")  # drop what earlier tests left
    with fan_stack.client() as api:
        job = api.post(
            "/api/v1/jobs", json={"pipeline_name": "branches", "parameters": {"pause": 4}}
        ).json()
    browser.get(f"{fan_stack.api}/#/jobs/{job['id']}")

    def wait(condition: Any, what: str, timeout: float = 60) -> Any:
        try:
            return WebDriverWait(browser, timeout, poll_frequency=0.1).until(condition)
        except Exception:
            shown = browser.find_element(By.TAG_NAME, "main").text[:1500]
            raise AssertionError(
                f"timed out waiting for {what}; the page shows:\n{shown}"
            ) from None

    def two_running(d: WebDriver) -> dict[str, dict[str, Any]] | None:
        # Two lanes running and, in the same drawing, the node list shows several nodes
        # running at once, not one (a later refresh may show the job done on a loaded machine).
        found, states = lanes_and_nodes(d)
        lanes_running = sum(lane["state"] == "running" for lane in found.values())
        return found if lanes_running >= 2 and states.count("running") >= 2 else None

    running = wait(two_running, "two groups' lanes and two nodes running at once")
    assert sorted(running) == ["g1", "g2", "g3", "g4"]
    busy = {g: lane for g, lane in running.items() if lane["state"] == "running"}
    assert all(lane["worker"] for lane in busy.values())
    assert len({lane["worker"] for lane in busy.values()}) == len(busy)
    # Side by side: the running lanes overlap on the time axis.
    assert max(lane["x"] for lane in busy.values()) < min(lane["end"] for lane in busy.values())
    assert running["g4"]["state"] == "pending"
    note = browser.find_element(By.ID, "job-groups-note").text
    assert "4 groups" in note and "running now" in note
    # Live: a running lane grows at each refresh.
    grower, before = next(iter(busy)), next(iter(busy.values()))["seconds"]
    wait(lambda d: lanes(d)[grower]["seconds"] > before + 1, "a running lane to grow")
    # Where `docs/screenshots` is refreshed from (KEDRO_JOBS_SCREENSHOTS), else the test's folder.
    shots = Path(os.environ.get("KEDRO_JOBS_SCREENSHOTS") or tmp_path)
    browser.set_window_size(1200, 1400)
    browser.save_screenshot(str(shots / "job-groups-running.png"))
    browser.set_window_size(1200, 800)

    wait(lambda d: {lane["state"] for lane in lanes(d).values()} == {"completed"},
         "every lane completed", timeout=120)  # fmt: skip
    done = lanes(browser)
    assert [done[g]["done"] for g in ("g1", "g2", "g3", "g4")] == ["2/2", "2/2", "2/2", "1/1"]
    # The join ran after the branches: its lane starts where theirs have ended.
    assert done["g4"]["x"] >= max(done[g]["end"] for g in ("g1", "g2", "g3")) - 1
    # The node timeline: a bar per node, each naming its group and that group's worker.
    bars = wait(lambda d: d.execute_script(
        "const rows = [...document.querySelectorAll('#job-timeline g.tl-row')];"
        "return rows.length === 7 && rows.every((g) => g.dataset.group) ? rows.map((g) =>"
        " [g.dataset.node, g.dataset.state, g.dataset.group, g.dataset.worker]) : null"
    ), "a timeline bar per node with its group")  # fmt: skip
    assert {state for _, state, _, _ in bars} == {"completed"}
    assert all(worker == done[group]["worker"] for _, _, group, worker in bars)
    assert sorted(name for name, _, group, _ in bars if group == "g4") == ["report"]
    errors = [e for e in browser.get_log("browser")
              if e["level"] == "SEVERE" and e.get("source") != "network"]  # fmt: skip
    assert not errors, errors
    with fan_stack.client() as api:
        record = api.get(f"/api/v1/jobs/{job['id']}").json()
    assert json.dumps(record["results"]) == json.dumps({"summary": {"total": 9.0, "branches": 3}})


def test_a_failed_group_shows_failed_on_its_lane_and_node(
    browser: WebDriver, fan_stack: LocalStack
) -> None:
    with fan_stack.client() as api:
        job = api.post("/api/v1/jobs", json={"pipeline_name": "failing"}).json()
        done = wait_for(api, job["id"])
    assert done["status"] == "failed", done
    browser.get(f"{fan_stack.api}/#/jobs/{job['id']}")
    found = WebDriverWait(browser, 30, poll_frequency=0.1).until(
        lambda d: (lanes(d).get("g2") or {}).get("state") == "failed" and lanes(d)
    )
    # fit_b raised: its branch's lane failed after one node; the join never ran.
    assert found["g2"]["done"] == "1/2" and found["g4"]["state"] == "pending"
    states = dict(
        browser.execute_script(
            "return [...document.querySelectorAll('#job-nodes li')]"
            ".map((li) => [li.dataset.node, li.dataset.state])"
        )
    )
    assert states["fit_b"] == "failed" and states["prep_b"] == "done"
    assert states["report"] == "skipped"
    assert "branch b does not fit" in browser.find_element(By.ID, "job-error").text


# --- Faults: cancel, a failing group, a killed consumer ----------------------------------------


def _stack_env(tmp_path: Path) -> tuple[dict[str, str], Path, Path]:
    """The fan-out project on a local data root, its nodes recorded as they start."""
    project = write_fanout_project(tmp_path / "project")
    root, record = tmp_path / "root", tmp_path / "executions.txt"
    env = {
        "KEDRO_PROJECT_PATH": str(project),
        "FAN_OUT_MIN_GROUP_SECONDS": "0",
        "JOBS_DATA_ROOT": str(root),
        "KEDRO_JOBS_TEST_RECORD": str(record),
    }
    return env, root, record


def _settled(api: Any, job_id: str) -> dict[str, Any] | None:
    """The record once the job ended and none of its groups runs any more (a group stops at
    its next node boundary, which may come just after the job's end is recorded)."""
    record: dict[str, Any] = api.get(f"/api/v1/jobs/{job_id}").json()
    if record["status"] not in TERMINAL:
        return None
    groups = (record.get("groups") or {}).values()
    return None if any(g["status"] == "running" for g in groups) else record


def _branches_running(api: Any, job_id: str) -> dict[str, Any] | None:
    """The record once the three branch groups all run their first node."""
    record: dict[str, Any] = api.get(f"/api/v1/jobs/{job_id}").json()
    branches = [g for g in (record.get("groups") or {}).values() if g["nodes"] == 2]
    running = len(branches) == 3 and all(g["status"] == "running" for g in branches)
    return record if running and all(g["current_node"] for g in branches) else None


@pytest.mark.slow  # the nodes sleep: real time
def test_a_cancel_stops_every_running_group_at_its_next_node_boundary(tmp_path: Path) -> None:
    env, root, record = _stack_env(tmp_path)
    with running_local_stack(tmp_path / "dev.log", workers=3, env=env) as stack:
        api = stack.client()
        params = {"prep_pause": 6.0, "pause": 6.0}
        job = api.post(
            "/api/v1/jobs", json={"pipeline_name": "branches", "parameters": params}
        ).json()
        until("the three branches running", lambda: _branches_running(api, job["id"]), 90)
        assert api.post(f"/api/v1/jobs/{job['id']}/cancel").status_code < 300
        at_cancel = api.get(f"/api/v1/jobs/{job['id']}").json()
        done = until("every group stopped", lambda: _settled(api, job["id"]), 90)
    assert done["status"] == "cancelled", done["error_message"]
    ran = record.read_text().split()
    assert "report" not in ran  # the join never started
    # Each branch finished the node it was running and started no other.
    for group in at_cancel["groups"].values():
        if group["current_node"] and group["current_node"].startswith("prep_"):
            assert "fit_" + group["current_node"][-1] not in ran, ran
    assert any(g["current_node"].startswith("prep_") for g in at_cancel["groups"].values()
               if g["current_node"])  # fmt: skip
    assert {g["status"] for g in done["groups"].values()} <= {"cancelled", "pending"}
    assert not (root / "data").exists()  # nothing committed
    assert not (root / ".kedro-jobs" / "groups" / job["id"]).exists()  # no staging left


@pytest.mark.slow  # the nodes sleep: real time
def test_a_failing_group_fails_the_job_naming_its_node_and_its_siblings_stop(
    tmp_path: Path,
) -> None:
    env, root, record = _stack_env(tmp_path)
    with running_local_stack(tmp_path / "dev.log", workers=3, env=env) as stack:
        api = stack.client()
        params = {"prep_pause": 6.0, "pause": 6.0}
        job = api.post(
            "/api/v1/jobs", json={"pipeline_name": "failing_early", "parameters": params}
        ).json()
        done = until("every group stopped", lambda: _settled(api, job["id"]), 90)
    assert done["status"] == "failed"
    assert done["error_message"] == "ValueError: branch b has no data (node: prep_b)"
    ran = record.read_text().split()
    # b failed in its first node. A branch running then stopped after its first node, and
    # one not started yet (its consumer slower to take it) never started: no fit_, no report.
    assert "prep_b" in ran and set(ran) <= {"prep_a", "prep_b", "prep_c"}, ran
    statuses = {g["status"] for gid, g in done["groups"].items()}
    assert "failed" in statuses and statuses <= {"failed", "cancelled", "pending"}
    assert not (root / "data").exists()
    assert not (root / ".kedro-jobs" / "groups" / job["id"]).exists()


@pytest.mark.parametrize(
    ("lease", "nap", "args"),
    [
        # The settings' 60 s lease, the template's 900 s timeout and rate(1 minute) sweeper.
        pytest.param(60, 100.0, ("--consumer-timeout", "900"),
                     marks=[pytest.mark.slow, pytest.mark.timeout(600)], id="template-defaults"),
        pytest.param(10, 25.0, ("--consumer-timeout", "60", "--sweep-every", "2"),
                     marks=pytest.mark.slow, id="short-timings"),
    ],
)  # fmt: skip
def test_a_group_whose_consumer_is_killed_is_taken_over_alone(
    tmp_path: Path, lease: int, nap: float, args: tuple[str, ...]
) -> None:
    """Three branch groups mid-node on three consumers; one consumer SIGKILLed. A running
    sibling notices the dead group at its heartbeat once the group's lease ran out and sends
    its message again: the group runs again from its first node on another consumer, its
    siblings run once, the job completes with the one-worker result. The takeover's time is
    printed (run with -s) against the queue's visibility timeout, which the dead worker's
    own message would have waited."""
    env, _, record = _stack_env(tmp_path)
    env["JOB_LEASE_SECONDS"] = str(lease)
    with running_local_stack(tmp_path / "dev.log", workers=3, env=env, args=args) as stack:
        api = stack.client()
        sqs = stack.aws("sqs")
        queue = sqs.get_queue_url(QueueName="kedro-jobs-queue")["QueueUrl"]
        visibility = int(
            sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["VisibilityTimeout"])[
                "Attributes"
            ]["VisibilityTimeout"]
        )
        job = api.post(
            "/api/v1/jobs", json={"pipeline_name": "branches", "parameters": {"pause": nap}}
        ).json()
        until("the three branches in fit", lambda: _fitting(api, job["id"]), 90)
        busy = until("three busy consumers", lambda: len(busy_consumers(stack)) == 3, 30)
        assert busy
        os.kill(busy_consumers(stack)[0], signal.SIGKILL)
        killed = time.monotonic()
        taken = until("a group taken over", lambda: _taken_over(api, job["id"]), 10 * lease + 120)
        takeover = time.monotonic() - killed
        done = wait_for(api, job["id"], timeout=nap + 10 * lease + 120)
        finished = time.monotonic() - killed
    assert done["status"] == "completed", done["error_message"]
    assert done["results"] == {"summary": {"total": 9.0, "branches": 3}}
    (dead,) = [g for g, run in done["groups"].items() if run["runs"] == 2]
    name = next(g["name"] for g in done["fan_out"]["groups"] if g["id"] == dead)
    branch = name[-1]  # the group is named after its first node, prep_<branch>
    ran = record.read_text().split()
    for node in ("prep_a", "fit_a", "prep_b", "fit_b", "prep_c", "fit_c"):
        assert ran.count(node) == (2 if node.endswith(branch) else 1), ran
    assert ran.count("report") == 1
    assert taken and takeover < visibility
    print(  # the figures for docs/fan-out.md (run with -s)
        f"\nlease {lease} s, visibility timeout {visibility} s: group {dead} taken over "
        f"{takeover:.1f} s after its consumer was killed; job completed {finished:.1f} s after"
    )


def _fitting(api: Any, job_id: str) -> bool:
    record = _branches_running(api, job_id)
    groups = (record or {}).get("groups") or {}
    return bool(record) and all(
        (g["current_node"] or "").startswith("fit_") for g in groups.values() if g["nodes"] == 2
    )


def _taken_over(api: Any, job_id: str) -> bool:
    record = api.get(f"/api/v1/jobs/{job_id}").json()
    return any(g["runs"] == 2 for g in (record.get("groups") or {}).values())
