"""`make dev` as a service: a hung consumer shows on `/health`, a dead emulator or consumer
comes back by itself, every stop signal (Ctrl-C, SIGTERM, a closed terminal) leaves nothing
running and hands the running jobs back, and the history (jobs, logs, waiting work,
schedules) outlives stops and crashes; the console shows one line per job state change.

Each start of the stack costs seconds of CPU, so each test drives one stack (or one run of
restarts) through several checks that do not disturb each other, in the order a user would
meet them.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from kedro_jobs_local.dev_stack import LocalStack, running_local_stack, stop_and_count, wait_healthy
from kedro_jobs_local.procfs import Proc

from .conftest import poll_intervals, wait_for

# Heartbeats every 2 s (the default is 5 s): a hung consumer shows after three, 6 s.
QUICK_BEATS = {"CONSUMER_HEARTBEAT_SECONDS": "2"}
FAILING = {"pipeline_name": "data_loading", "parameters": {"data_loading": {"n_rows": -1}}}
SLOW_NODE = "rank_regions"


def until(what: str, check: Callable[[], Any], timeout: float = 60) -> Any:
    """``check()``'s first truthy answer, polled often at first, then every half second; an
    HTTP error (the emulator or API away for a moment) counts as no answer yet."""
    deadline, intervals = time.monotonic() + timeout, poll_intervals()
    while True:
        try:
            found = check()
        except httpx.HTTPError:
            found = None
        if found:
            return found
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(next(intervals))


def submit(client: httpx.Client, body: dict[str, Any] | None = None) -> str:
    job_id: str = client.post("/api/v1/jobs", json=body or {"pipeline_name": "hello"}).json()["id"]
    return job_id


def slow_job(release: Path) -> dict[str, Any]:
    """A reporting job whose slow node runs until the test creates ``release``."""
    slow = {"delay_seconds": 120, "release_file": str(release)}
    return {"pipeline_name": "reporting", "parameters": {"reporting": slow}}


def in_slow_node(client: httpx.Client, job_id: str) -> bool:
    """Running its slow node, in its forked process (where a stop can hand it back)."""
    job = client.get(f"/api/v1/jobs/{job_id}").json()
    return (
        job["status"] == "running" and (job.get("progress") or {}).get("current_node") == SLOW_NODE
    )


def pid_of(stack: LocalStack, marker: str) -> int:
    """The pid of make dev's own child whose command has `marker` (a consumer's names its
    queue; the jobs it forks share its command line but not its parent)."""
    assert stack.process is not None
    [proc] = [p for p in stack.processes() if marker in p.command and p.ppid == stack.process.pid]
    return proc.pid


def listed(client: httpx.Client) -> dict[str, str]:
    jobs = client.get("/api/v1/jobs", params={"limit": 100}).json()["jobs"]
    return {j["id"]: j["status"] for j in jobs}


def consumer(stack: LocalStack) -> dict[str, Any]:
    """What `/health` says of the (one) consumer of the jobs queue."""
    [found] = [c for c in stack.health()["consumers"] if c["id"] == "consumer-0"]
    return dict(found)


def stop(
    stack: LocalStack, sig: signal.Signals, meanwhile: Callable[[], None] | None = None
) -> tuple[list[Proc], list[Proc]]:
    """Stop make dev with `sig` (``meanwhile`` runs while it stops): what ran before, and
    what is left running after."""
    assert stack.process is not None
    started = stack.processes()
    stack.process.send_signal(sig)
    if meanwhile is not None:
        meanwhile()
    stack.process.wait(timeout=90)
    return started, stop_and_count(stack.process, started, sig)


def test_a_hung_or_killed_consumer_or_emulator_and_ctrl_c(tmp_path: Path) -> None:
    """One stack: a hung consumer makes `/health` degraded while a job waits (the job runs
    once it is back); a killed consumer, then a killed emulator, come back by themselves with
    what the emulator held, and the console lives through it with no traceback; Ctrl-C with a
    job in its slow node, and a hung process that must be killed after its grace, leaves
    nothing running."""
    console = tmp_path / "console.txt"
    with (
        running_local_stack(console, workers=1, env=QUICK_BEATS, verbose=False) as stack,
        stack.client() as client,
    ):
        first = submit(client)
        assert wait_for(client, first)["status"] == "completed"

        waiting = hung_consumer_degrades_health(stack, client, timeout=20, batches=1)

        os.kill(pid_of(stack, "kedro-jobs-queue"), signal.SIGKILL)
        # Back, and polling: a receive the dead one left waiting on the emulator may still
        # take a message for a moment (SQS then hides it for the visibility timeout).
        until(
            "the consumer is back",
            lambda: (c := consumer(stack))["restarts"] == 1 and c["alive"] and c["state"] == "idle",
        )
        second = submit(client)
        assert wait_for(client, second)["status"] == "completed"

        os.kill(pid_of(stack, "kedro_jobs_local.moto_server"), signal.SIGKILL)
        wait_healthy(stack, timeout=30)
        # What the emulator held came back with it, and jobs run again.
        done = {first: "completed", waiting: "completed", second: "completed"}
        assert listed(client) == done
        assert "hello" in client.get(f"/api/v1/jobs/{first}/logs").text
        third = submit(client)
        assert wait_for(client, third)["status"] == "completed"

        # Ctrl-C while a job runs in its forked process: that one goes too; and a hung
        # process (the dead-letter poller) is killed after its grace.
        slow = submit(client, slow_job(tmp_path / "never"))
        until("the slow job's slow node", lambda: in_slow_node(client, slow))
        os.kill(pid_of(stack, "kedro-jobs-dlq"), signal.SIGSTOP)
        started, left = stop(stack, signal.SIGINT)
    # moto, the API, a consumer, the dead-letter poller, ... and the job's own process.
    assert len(started) >= 5, started
    assert left == [], f"{len(left)} of {len(started)} processes left after SIGINT"
    # On the console, one line for each death (the console itself lived through the
    # emulator's); in the processes' log, while the emulator was away, a few lines, not a flood.
    text = console.read_text()
    assert text.count("; restarting") == 2 and "Traceback" not in text, text[-3000:]
    log = (tmp_path / "state" / "dev.log").read_text()
    assert log.count("poll failed") <= 10, log[-3000:]


def hung_consumer_degrades_health(
    stack: LocalStack, client: httpx.Client, timeout: float, batches: int = 0
) -> str:
    """A hung consumer: `/health` says degraded while a job waits (within ``timeout``); the
    job runs once the consumer is back. Returns the job. ``batches``: how many it has taken."""
    # Idle, polling (a busy one is alive until its batch's deadline, a minute here), after its
    # last batch (a beat written before a quick job's batch still says idle).
    until(
        "the consumer polls",
        lambda: (c := consumer(stack))["state"] == "idle" and c["batches"] >= batches,
    )
    hung = pid_of(stack, "kedro-jobs-queue")
    os.kill(hung, signal.SIGSTOP)  # alive to the supervisor, polling nothing
    try:
        # Seen dead: three beats without a poll (so its last long poll has ended too).
        until("the hung consumer seen dead", lambda: not consumer(stack)["alive"], timeout)
        waiting = submit(client)
        health = until("health says degraded", lambda: _degraded(stack))
        assert health["consumers_alive"] == 0 and health["queue"]["waiting"] == 1
        assert "no consumer alive" in health["detail"]
    finally:
        os.kill(hung, signal.SIGCONT)
    assert wait_for(client, waiting)["status"] == "completed"
    until("health is ok again", lambda: stack.health()["status"] == "ok")
    return waiting


@pytest.mark.slow  # the template's own heartbeats: a hung consumer shows after 15 s
def test_a_hung_consumer_shows_on_health_at_the_default_heartbeats(tmp_path: Path) -> None:
    with (
        running_local_stack(tmp_path / "dev.log", workers=1) as stack,
        stack.client() as client,
    ):
        hung_consumer_degrades_health(stack, client, timeout=40)


def _degraded(stack: LocalStack) -> dict[str, Any] | None:
    health = stack.health()
    return health if health["status"] == "degraded" else None


def test_stops_hand_jobs_back_history_outlives_restarts_and_crashes_fresh_starts_empty(
    tmp_path: Path,
) -> None:
    """Four starts of `make dev` on one state folder (the first as its console shows it).

    1. Jobs completed and failed, one line each per state change on the console; two jobs in
       their slow node and two waiting for a consumer; schedules. SIGTERM (what `make` sends
       on Ctrl-C): one running job's node ends within the stop's grace, so it saves a
       checkpoint at that node boundary; the other's goes on, so it is stopped and goes on
       from its last checkpoint. Nothing is left running.
    2. The next start takes both up at once (a hand-off, not a lost consumer whose lease
       must expire) and runs the waiting ones; the history and the schedules are there. Then
       a crash: make dev itself SIGKILLed; its processes go with it, the state stays.
    3. After the crash, all of it is there; a closed terminal (SIGHUP) with a job running
       leaves nothing running.
    4. `--fresh` starts empty, and sets the old history aside.
    """
    state = tmp_path / "state"
    console = tmp_path / "console.txt"
    full_log = state / "dev.log"  # the processes' own lines, in the first start

    def start(workers: int = 1, args: tuple[str, ...] = (), verbose: bool = True) -> Any:
        # As `make dev` shows it (one line per job state change) only where the console is
        # looked at: the console is one more process to start.
        return running_local_stack(
            console, workers=workers, state_dir=state, verbose=verbose, args=args
        )

    nightly = {
        "name": "nightly",
        "expression": "cron(0 2 * * ? *)",
        "timezone": "Europe/Paris",
        "job": {"pipeline_name": "hello"},
    }
    with start(workers=2, verbose=False) as stack, stack.client() as client:
        assert client.post("/api/v1/schedules", json=nightly).status_code == 201
        assert client.post("/api/v1/schedules/nightly/pause").json()["state"] == "paused"
        gone = {**nightly, "name": "gone", "expression": "rate(1 day)"}
        assert client.post("/api/v1/schedules", json=gone).status_code == 201
        assert client.delete("/api/v1/schedules/gone").status_code == 204

        done = [submit(client) for _ in range(2)]
        bad = submit(client, FAILING)
        assert [wait_for(client, j)["status"] for j in done] == ["completed"] * 2
        assert wait_for(client, bad)["status"] == "failed"

        long, short = (submit(client, slow_job(tmp_path / name)) for name in ("long", "short"))
        for job_id in (long, short):
            until("both slow nodes run", lambda job_id=job_id: in_slow_node(client, job_id))
        pending = [submit(client) for _ in range(2)]  # both consumers are busy
        before = listed(client)
        assert before == {
            **dict.fromkeys(done, "completed"), bad: "failed",
            long: "running", short: "running", **dict.fromkeys(pending, "pending"),
        }  # fmt: skip

        handed_back = full_log.read_text().count("handing its job back")

        def release_short() -> None:
            # Once both consumers know of the stop, the short job's node ends (within the
            # grace): it stops at that boundary.
            until(
                "both consumers hand their jobs back",
                lambda: full_log.read_text().count("handing its job back") == handed_back + 2,
            )
            (tmp_path / "short").touch()

        started, left = stop(stack, signal.SIGTERM, release_short)
        assert left == [], f"{len(left)} of {len(started)} processes left after SIGTERM"
    text = console.read_text()
    banner, _, changes = text.partition("One line per job state change follows")
    assert f"web page       {stack.api}/" in banner
    assert f"KEDRO_JOBS_API={stack.api}" in banner and "kedro-jobs submit" in banner
    assert "export AWS_ACCESS_KEY_ID=" in banner and "AWS_DEFAULT_REGION=us-east-1" in banner
    assert f"full logs are in {full_log}" in text
    assert f"{bad[:8]}  data_loading  failed: ValueError" in changes
    lines = [line for line in changes.splitlines() if f"{done[0][:8]}  hello" in line]
    assert [line.split("  ", 3)[-1] for line in lines][-2:][0] == "running"
    assert lines[-1].split("  ", 3)[-1].startswith("completed in ")
    # The consumers' own log lines are in the state folder's file, not on the console.
    assert '"message":"job finished"' not in text
    assert '"message":"job finished"' in full_log.read_text()

    with start() as stack, stack.client() as client:
        (tmp_path / "long").touch()  # the long job's node ends in this start
        ran = {j: wait_for(client, j, timeout=120) for j in (short, long, *pending)}
        assert {j: r["status"] for j, r in ran.items()} == dict.fromkeys(ran, "completed"), ran
        assert listed(client).keys() == before.keys()
        assert "hello" in client.get(f"/api/v1/jobs/{done[0]}/logs").text
        page = client.get("/api/v1/schedules").json()
        assert [(s["name"], s["state"]) for s in page["schedules"]] == [("nightly", "paused")]
        resumed = client.post("/api/v1/schedules/nightly/resume").json()
        assert resumed["state"] == "enabled" and len(resumed["next_fires"]) == 5
        last = submit(client)
        assert wait_for(client, last)["status"] == "completed"
        assert stop(stack, signal.SIGKILL)[1] == []

    # The short one went on from the boundary after its slow node: that node ran once.
    first, second = ran[short]["segments"]
    assert first["ended"] == "continued"
    assert first["nodes"] == ["rp_generate_orders", "rp_clean_orders", "rank_regions"]
    assert second["nodes"] == ["write_report"]
    assert [(n["name"], n["segment"]) for n in ran[short]["nodes"]][-2:] == [
        ("rank_regions", 1), ("write_report", 2)
    ]  # fmt: skip
    assert ran[short]["results"]["report"].startswith("# Top regions")
    # The long one was stopped mid-node and handed back, not left to a lease's expiry: its
    # next claim is a continuation, not a lost attempt.
    first, second = ran[long]["segments"]
    assert first["ended"] == "handed_back" and first["nodes"] == [
        "rp_generate_orders", "rp_clean_orders"
    ]  # fmt: skip
    assert ran[long]["attempts"] == 2

    with start() as stack, stack.client() as client:
        assert listed(client) == {
            **dict.fromkeys(before, "completed"),
            bad: "failed",
            last: "completed",
        }
        page = client.get("/api/v1/schedules").json()
        assert [(s["name"], s["state"]) for s in page["schedules"]] == [("nightly", "enabled")]
        slow = submit(client, slow_job(tmp_path / "never"))
        until("the slow job's slow node", lambda: in_slow_node(client, slow))
        started, left = stop(stack, signal.SIGHUP)
        assert left == [], f"{len(left)} of {len(started)} processes left after SIGHUP"

    with start(args=("--fresh",)) as stack, stack.client() as client:
        assert listed(client) == {}
        assert client.get("/api/v1/schedules").json()["schedules"] == []
    assert (state / "previous" / "moto").is_dir()  # the old history was set aside, not lost
