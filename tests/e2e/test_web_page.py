"""The web page at `/`, in a real browser (Debian's headless Chromium, driven through its own
chromedriver) against the local stack: the list with 1,000 jobs, the submit form, a job's
page, cancel and retry, escaping, the token.

Screenshots go to $KEDRO_JOBS_SCREENSHOTS when set (`docs/screenshots` refreshes the committed
ones), else to the test's temporary folder, so a test run leaves the work tree as it was.
"""

from __future__ import annotations

import json
import os
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import boto3
import httpx
import pytest
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select

from kedro_jobs.core.compute import BACKENDS, DEFAULT
from kedro_jobs.core.models import Job, OutputInfo, Progress, utcnow
from kedro_jobs.core.states import JobStatus
from kedro_jobs.core.store import to_item
from kedro_jobs_local.dev_stack import LocalStack, running_local_stack

from .conftest import poll_intervals

SEEDED = 1_000
PAGE_SIZE = 25  # the page's own
XSS = "<img src=x onerror=window.__xss=1>"
BUCKET = "kedro-jobs-artifacts-123456789012-us-east-1"  # make dev's, fixed
OUTPUT = b'{"rows": 1099}\n'  # a seeded job's saved dataset, in the stack's bucket
T = TypeVar("T")
# The example's slow node waits at most this long for its release file (a test's cue).
RELEASE_FILE_LIMIT = 120


# --- The stack, 1,000 jobs, the browser --------------------------------------------------------


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    # A stack of its own: its 1,000 seeded jobs must not show in other tests' listings.
    with running_local_stack(tmp_path_factory.mktemp("web") / "dev.log") as local:
        yield local


def _seed_job(i: int, now: Any) -> Job:
    pipeline = ("data_loading", "feature_engineering", "reporting", "hello")[i % 4]
    status = ([JobStatus.COMPLETED] * 6 + [JobStatus.FAILED] * 2 + [JobStatus.CANCELLED] * 2)[
        i % 10
    ]
    created = now - timedelta(days=2) + timedelta(minutes=i)
    total = {"data_loading": 3, "feature_engineering": 5, "reporting": 4, "hello": 2}[pipeline]
    done = total if status is JobStatus.COMPLETED else 1
    return Job(
        id=str(uuid.uuid4()),
        pipeline_name=pipeline,
        status=status,
        parameters={"data_loading": {"n_rows": 100 + i}},
        results={"rows": 100 + i} if status is JobStatus.COMPLETED else None,
        error_message="ValueError: seeded failure (node: x)"
        if status is JobStatus.FAILED
        else None,
        created_at=created,
        started_at=created + timedelta(seconds=1),
        completed_at=created + timedelta(seconds=3),
        execution_time=2.0,
        progress=Progress(total_nodes=total, completed_nodes=done),
        attempts=1,
        updated_at=created + timedelta(seconds=3),
        outputs=(
            [
                OutputInfo(
                    name="orders_summary",
                    type="json.JSONDataset",
                    uri=f"s3://{BUCKET}/data/seeded/orders_summary.json",
                    size=len(OUTPUT),
                )
            ]
            if i == SEEDED - 1
            else None
        ),
    )


@pytest.fixture(scope="module")
def seeded(stack: LocalStack) -> list[Job]:
    """1,000 finished jobs of the caller, older than anything the tests submit, written
    straight to the table as the store writes them."""
    now = utcnow()
    jobs = [_seed_job(i, now) for i in range(SEEDED)]
    s3 = boto3.client("s3", endpoint_url=stack.endpoint_url, region_name="us-east-1")
    s3.put_object(Bucket=BUCKET, Key="data/seeded/orders_summary.json", Body=OUTPUT)
    dynamodb = boto3.client("dynamodb", endpoint_url=stack.endpoint_url, region_name="us-east-1")
    for start in range(0, len(jobs), 25):
        requests = [{"PutRequest": {"Item": to_item(j)}} for j in jobs[start : start + 25]]
        pending: dict[str, Any] = {"kedro-jobs-jobs": requests}
        while pending:
            pending = dynamodb.batch_write_item(RequestItems=pending).get("UnprocessedItems")
    return jobs


@pytest.fixture
def page(browser: WebDriver, stack: LocalStack, seeded: list[Job]) -> Iterator[WebDriver]:
    """The browser, with a check that the page raised no script or CSP error meanwhile."""
    browser.get_log("browser")  # drop what earlier tests left
    yield browser
    errors = [
        entry
        for entry in browser.get_log("browser")
        # An API answer of 404 (no log yet, no outputs route) is logged by Chromium too.
        if entry["level"] == "SEVERE" and entry.get("source") != "network"
    ]
    assert not errors, errors


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = os.environ.get("KEDRO_JOBS_SCREENSHOTS")
    folder = Path(target) if target else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# --- Helpers -----------------------------------------------------------------------------------


def wait(
    driver: WebDriver, condition: Callable[[WebDriver], T], what: str, timeout: float = 60
) -> T:
    """``condition``'s first truthy answer. Polled often at first, then less (poll_intervals):
    each poll is a round trip through chromedriver to the page, and a wait for a job runs
    for seconds."""
    deadline, intervals = time.monotonic() + timeout, poll_intervals()
    while True:
        try:
            value = condition(driver)
        except (StaleElementReferenceException, NoSuchElementException):
            value = None  # the page re-rendered under us, or has not drawn it yet: ask again
        if value:
            return value
        if time.monotonic() > deadline:
            shown = driver.find_element(By.TAG_NAME, "main").text[:1500]
            raise AssertionError(f"timed out waiting for {what}; the page shows:\n{shown}")
        time.sleep(next(intervals))


def rows(driver: WebDriver) -> list[WebElement]:
    return driver.find_elements(By.CSS_SELECTOR, "#jobs-body tr")


def row_ids(driver: WebDriver) -> list[str]:
    # One round trip to the browser, not one a row.
    ids: list[str] = driver.execute_script(
        "return [...document.querySelectorAll('#jobs-body tr')].map((r) => r.dataset.jobId)"
    )
    return ids


def listed(driver: WebDriver) -> tuple[str, list[dict[str, str]]]:
    """The list's page number as shown, and each row's job id, status and pipeline, as one
    drawing shows them (one round trip, not one a row)."""
    info, found = driver.execute_script(
        """return [document.getElementById('page-info').textContent,
                   [...document.querySelectorAll('#jobs-body tr')].map((r) => ({
                     id: r.dataset.jobId, status: r.dataset.status,
                     pipeline: r.querySelectorAll('td')[1].innerText}))];"""
    )
    return str(info), list(found)


def text(driver: WebDriver, element_id: str) -> str:
    return str(driver.find_element(By.ID, element_id).get_attribute("textContent") or "")


def open_hash(driver: WebDriver, stack: LocalStack, fragment: str) -> None:
    if driver.current_url.startswith(f"{stack.api}/"):
        driver.execute_script("location.hash = arguments[0]", fragment)
    else:
        driver.get(f"{stack.api}/{fragment}")


@contextmanager
def network_latency(driver: WebDriver, seconds: float) -> Iterator[None]:
    """Every request the page makes answers ``seconds`` late (Chrome's network emulation)."""

    def emulate(latency_ms: float) -> None:
        conditions = {"offline": False, "latency": latency_ms,
                      "downloadThroughput": -1, "uploadThroughput": -1}  # fmt: skip
        driver.execute_cdp_cmd("Network.emulateNetworkConditions", conditions)

    driver.execute_cdp_cmd("Network.enable", {})
    emulate(seconds * 1000)
    try:
        yield
    finally:
        emulate(0)


def job_id_from_url(driver: WebDriver) -> str:
    return wait(
        driver,
        lambda d: d.current_url.split("#/jobs/", 1)[1] if "#/jobs/" in d.current_url else "",
        "the job's page",
    )


def node_states(driver: WebDriver) -> dict[str, str]:
    return {
        li.get_attribute("data-node") or "": li.get_attribute("data-state") or ""
        for li in driver.find_elements(By.CSS_SELECTOR, "#job-nodes li")
    }


def choose_pipeline(driver: WebDriver, pipeline: str) -> None:
    """Choose ``pipeline`` in the submit form once it is listed: chosen again if the form
    re-rendered its options meanwhile (it lists the pipelines each time it opens)."""

    def chosen(d: WebDriver) -> bool:
        select = Select(d.find_element(By.ID, "submit-pipeline"))
        if not any(o.get_attribute("value") == pipeline for o in select.options):
            return False
        select.select_by_value(pipeline)
        return d.find_element(By.ID, "submit-pipeline").get_attribute("value") == pipeline

    wait(driver, chosen, f"{pipeline} chosen in the form")


def submit_form(
    driver: WebDriver, stack: LocalStack, pipeline: str, parameters: str, **options: str
) -> str:
    open_hash(driver, stack, "#/submit")
    choose_pipeline(driver, pipeline)
    box = driver.find_element(By.ID, "submit-parameters")
    box.clear()
    box.send_keys(parameters)
    for field in driver.find_elements(By.CSS_SELECTOR, "#submit-form [data-option]"):
        field.clear()
    for name, value in options.items():
        driver.find_element(By.ID, f"opt-{name}").send_keys(value)
    before = driver.current_url
    driver.find_element(By.ID, "submit-button").click()
    wait(driver, lambda d: d.current_url != before and "#/jobs/" in d.current_url, "submitted")
    return job_id_from_url(driver)


def wait_status(driver: WebDriver, status: str, timeout: float = 90) -> None:
    wait(driver, lambda d: text(d, "job-status") == status, f"status {status}", timeout)


def api_job(stack: LocalStack, job_id: str) -> dict[str, Any]:
    with stack.client() as client:
        job: dict[str, Any] = client.get(f"/api/v1/jobs/{job_id}").json()
    return job


_TIMINGS = """
const listing = performance.getEntriesByType("resource").filter(
  (e) => e.name.includes("/api/v1/jobs?"))[0];
return {
  rendered: performance.getEntriesByName("kedro-jobs:list-rendered")[0].startTime,
  listing: listing.responseEnd - listing.startTime,
};
"""

# --- Tests -------------------------------------------------------------------------------------


def test_the_list_pages_through_1000_jobs_newest_first(
    page: WebDriver, stack: LocalStack, seeded: list[Job], record_property: Any
) -> None:
    # Load time: from navigation start to the first page of jobs drawn (a mark the page sets).
    timings = []
    for _ in range(3):
        page.get(f"{stack.api}/")
        wait(page, lambda d: len(rows(d)) == PAGE_SIZE, "the first page of jobs")
        timings.append(page.execute_script(_TIMINGS))
    record_property("list_rendered_ms", timings)
    rendered = statistics.median(t["rendered"] for t in timings)
    listing = statistics.median(t["listing"] for t in timings)
    print(f"\nlist of {SEEDED} jobs drawn {rendered:.0f} ms after navigation start, of which "
          f"the /jobs call {listing:.0f} ms (medians of {len(timings)}): {timings}")  # fmt: skip

    newest_first = sorted(seeded, key=lambda j: j.created_at, reverse=True)
    seen: list[str] = []
    older = page.find_element(By.ID, "page-older")
    for number in range(1, SEEDED // PAGE_SIZE + 1):

        def drawn(d: WebDriver, n: int = number) -> list[str] | None:
            info, found = listed(d)
            ids = [row["id"] for row in found]
            return ids if info == f"Page {n}" and ids and ids[0] not in seen else None

        seen.extend(wait(page, drawn, f"page {number}"))
        if number < SEEDED // PAGE_SIZE:
            older.click()
    # Every seeded job, once, newest first (the tests' own jobs are newer and come first).
    ours = [job_id for job_id in seen if job_id in {j.id for j in seeded}]
    assert ours == [j.id for j in newest_first][: len(ours)]
    assert len(ours) >= SEEDED - PAGE_SIZE
    page.find_element(By.ID, "page-newer").click()
    wait(page, lambda d: text(d, "page-info") == f"Page {SEEDED // PAGE_SIZE - 1}", "back a page")

    # Filters: by status, then also by pipeline; the address keeps them.
    Select(page.find_element(By.ID, "filter-status")).select_by_value("failed")
    wait(
        page,
        lambda d: (found := listed(d)[1]) and all(r["status"] == "failed" for r in found),
        "only failed jobs",
    )
    assert text(page, "page-info") == "Page 1"
    Select(page.find_element(By.ID, "filter-pipeline")).select_by_value("reporting")
    wait(
        page,
        lambda d: (
            (found := listed(d)[1])
            and all(r["pipeline"] == "reporting" and r["status"] == "failed" for r in found)
        ),
        "failed reporting jobs",
    )
    assert "status=failed" in page.current_url and "pipeline=reporting" in page.current_url


def test_submit_through_the_form_and_see_it_complete(
    page: WebDriver, stack: LocalStack, screenshots: Path
) -> None:
    parameters = json.dumps({"data_loading": {"n_rows": 30}, "note": XSS})
    open_hash(page, stack, "#/submit")
    # The form shows the pipeline's manifest: what it reads, its nodes.
    wait(page, lambda d: "data_loading" in text(d, "pipeline-parameters"), "the manifest")
    job_id = submit_form(page, stack, "data_loading", parameters, tags="data_loading")
    wait_status(page, "completed")
    wait(page, lambda d: "rows_generated" in text(d, "job-results"), "the results")

    assert node_states(page) == {
        "generate_orders": "done",
        "clean_orders": "done",
        "summarise_orders": "done",
    }
    assert '"rows_generated": 30' in text(page, "job-results")
    assert '"tags"' in text(page, "job-options") and "data_loading" in text(page, "job-options")
    wait(page, lambda d: "data_loading" in text(d, "job-log"), "the run's log")
    # The parameter is user data: shown as the text it is, never made into an element.
    assert XSS in text(page, "job-parameters")
    assert page.find_elements(By.CSS_SELECTOR, "main img") == []
    assert page.execute_script("return window.__xss") is None
    assert api_job(stack, job_id)["parameters"] == json.loads(parameters)

    page.set_window_size(1200, 1500)
    page.save_screenshot(str(screenshots / "job-page.png"))
    page.set_window_size(1200, 800)

    # And it heads the list.
    open_hash(page, stack, "#/jobs")
    wait(page, lambda d: row_ids(d)[:1] == [job_id], "the new job first in the list")


def test_a_slow_job_shows_live_progress_is_cancelled_and_retried(
    page: WebDriver, stack: LocalStack, screenshots: Path, tmp_path: Path
) -> None:
    # Its slow node runs until the test releases it (RELEASE_FILE_LIMIT at most): the job is
    # still running when the cancel arrives, however loaded the machine, and no longer.
    release = tmp_path / "release"
    slow = {"delay_seconds": RELEASE_FILE_LIMIT, "release_file": str(release)}
    job_id = submit_form(page, stack, "reporting", json.dumps({"reporting": slow}))
    wait(page, lambda d: node_states(d).get("rank_regions") == "running", "rank_regions running")
    assert node_states(page) == {
        "rp_generate_orders": "done",
        "rp_clean_orders": "done",
        "rank_regions": "running",
        "write_report": "pending",
    }

    # The list shows it running, with its progress, while it runs.
    open_hash(page, stack, "#/jobs")
    wait(
        page,
        lambda d: (
            (r := d.find_elements(By.CSS_SELECTOR, f'tr[data-job-id="{job_id}"]'))
            and r[0].get_attribute("data-status") == "running"
            and "2/4 rank_regions" in r[0].text
        ),
        "the running job's progress in the list",
    )
    page.save_screenshot(str(screenshots / "jobs-list.png"))

    # Back on its page over a slow network: Cancel is enabled for this job only once its
    # answer is drawn (a click on what the page showed before would be lost).
    with network_latency(page, seconds=1.5):
        open_hash(page, stack, f"#/jobs/{job_id}")
        wait_status(page, "running")
        wait(page, lambda d: d.find_element(By.ID, "job-cancel").is_enabled(), "cancel enabled")
        page.find_element(By.ID, "job-cancel").click()
        wait(page, lambda d: "Cancel requested" in text(d, "job-message"), "the cancel's answer")
    assert api_job(stack, job_id)["status"] == "running"  # it stops at its next node
    release.touch()
    wait_status(page, "cancelled", timeout=60)
    wait(page, lambda d: node_states(d).get("write_report") == "skipped", "the last node skipped")
    assert not page.find_element(By.ID, "job-cancel").is_enabled()
    assert api_job(stack, job_id)["status"] == "cancelled"

    # Retry: a new job, pointing back at this one; cancelled too (it would sleep again).
    retry = wait(
        page, lambda d: (b := d.find_element(By.ID, "job-retry")).is_enabled() and b, "retry"
    )
    retry.click()
    wait(page, lambda d: not d.current_url.endswith(job_id), "the retried job's page")
    new_id = job_id_from_url(page)
    wait(page, lambda d: job_id in text(d, "job-summary"), "retry of the cancelled job")
    assert api_job(stack, new_id)["retry_of"] == job_id
    wait(page, lambda d: d.find_element(By.ID, "job-cancel").is_enabled(), "cancel enabled")
    page.find_element(By.ID, "job-cancel").click()
    # Released only once the cancel is recorded, or the retry could finish before it.
    wait(
        page,
        lambda d: (j := api_job(stack, new_id))["cancel_requested"] or j["status"] == "cancelled",
        "the retry's cancel recorded",
    )
    release.touch()  # if it got as far as its slow node
    wait_status(page, "cancelled", timeout=60)


def test_a_jobs_outputs_are_listed_with_download_links(
    page: WebDriver, stack: LocalStack, seeded: list[Job]
) -> None:
    job = seeded[-1]
    open_hash(page, stack, f"#/jobs/{job.id}")
    row = wait(
        page,
        lambda d: d.find_elements(By.CSS_SELECTOR, '#job-outputs tr[data-output="orders_summary"]'),
        "the output's row",
    )[0]
    assert "json.JSONDataset" in row.text and f"{len(OUTPUT)} B" in row.text
    link = wait(page, lambda d: row.find_elements(By.CSS_SELECTOR, "a.download"), "the link")[0]
    href = link.get_attribute("href") or ""
    # The link is the API's presigned URL: it downloads the file with no credentials at all.
    assert href.startswith("http")
    assert httpx.get(href, timeout=10, follow_redirects=True).content == OUTPUT


def test_bad_input_shows_what_is_wrong_and_submits_nothing(
    page: WebDriver, stack: LocalStack
) -> None:
    open_hash(page, stack, "#/submit")
    wait(page, lambda d: len(Select(d.find_element(By.ID, "submit-pipeline")).options) > 0, "form")
    box = page.find_element(By.ID, "submit-parameters")
    box.clear()
    box.send_keys("{not json")
    page.find_element(By.ID, "submit-button").click()
    wait(page, lambda d: "not valid JSON" in text(d, "submit-error"), "the JSON error")

    box.clear()
    box.send_keys("{}")
    env = page.find_element(By.ID, "opt-env")
    env.clear()
    env.send_keys("not a valid env!")
    page.find_element(By.ID, "submit-button").click()
    wait(page, lambda d: "Not submitted (422)" in text(d, "submit-error"), "the API's answer")
    assert "env" in text(page, "submit-error")
    assert "#/submit" in page.current_url


def test_the_token_is_kept_in_the_tab_and_sent_as_a_bearer_header(
    page: WebDriver, stack: LocalStack
) -> None:
    def authorizations() -> list[str | None]:
        found = []
        for entry in page.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message["method"] != "Network.requestWillBeSent":
                continue
            request = message["params"]["request"]
            if "/api/v1/jobs?" in request["url"]:
                found.append(request["headers"].get("Authorization"))
        return found

    open_hash(page, stack, "#/token")
    wait(page, lambda d: d.find_element(By.ID, "token-input").is_displayed(), "the token form")
    assert "JwtIssuer" in text(page, "token-view") and "Authorization: Bearer" in text(
        page, "token-view"
    )
    page.find_element(By.ID, "token-input").send_keys("test-token-123")
    page.find_element(By.ID, "token-save").click()
    wait(page, lambda d: text(d, "token-nav") == "Token \u2713", "the token set")
    assert page.execute_script("return sessionStorage.getItem('kedro-jobs.token')") == (
        "test-token-123"
    )
    page.get_log("performance")
    open_hash(page, stack, "#/jobs")
    sent = wait(page, lambda d: authorizations(), "a listing request")
    assert set(sent) == {"Bearer test-token-123"}

    open_hash(page, stack, "#/token")
    page.find_element(By.ID, "token-clear").click()
    wait(page, lambda d: text(d, "token-nav") == "Token", "the token forgotten")
    page.get_log("performance")
    open_hash(page, stack, "#/jobs")
    assert set(wait(page, lambda d: authorizations(), "a listing request")) == {None}


def test_the_page_is_served_with_a_strict_content_security_policy(stack: LocalStack) -> None:
    index = httpx.get(f"{stack.api}/", timeout=10)
    assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
    policy = index.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert httpx.get(f"{stack.api}/ui/app.js", timeout=10).status_code == 200
    assert httpx.get(f"{stack.api}/ui/router.py", timeout=10).status_code == 404


# --- Schedules (schedules.js) ------------------------------------------------------------------


def schedule_row(driver: WebDriver, name: str) -> WebElement | None:
    found = driver.find_elements(By.CSS_SELECTOR, f'#schedules-body tr[data-schedule="{name}"]')
    return found[0] if found else None


def fill_schedule(driver: WebDriver, stack: LocalStack, name: str, expression: str) -> None:
    open_hash(driver, stack, "#/submit")
    choose_pipeline(driver, "hello")
    for field, value in (
        ("schedule-name", name),
        ("schedule-expression", expression),
        ("schedule-timezone", "Europe/Paris"),
    ):
        box = driver.find_element(By.ID, field)
        box.clear()
        box.send_keys(value)
    Select(driver.find_element(By.ID, "schedule-overlap")).select_by_value("skip")
    driver.find_element(By.ID, "schedule-create").click()


def test_a_schedule_is_made_from_the_form_listed_paused_and_deleted(
    page: WebDriver, stack: LocalStack, screenshots: Path
) -> None:
    name = f"web-{uuid.uuid4().hex[:8]}"
    # A bad expression is refused, naming what is wrong; nothing is made.
    fill_schedule(page, stack, name, "cron(0 2 * * *)")
    wait(page, lambda d: "6 fields" in text(d, "submit-error"), "the expression's error")
    with stack.client() as client:
        assert client.get(f"/api/v1/schedules/{name}").status_code == 404

    fill_schedule(page, stack, name, "cron(0 2 * * ? *)")
    wait(page, lambda d: d.current_url.endswith("#/schedules"), "the schedules tab")
    row = wait(page, lambda d: schedule_row(d, name), "the new schedule in the list")
    shown = row.text
    assert "enabled" in shown and "cron(0 2 * * ? *)" in shown and "Europe/Paris" in shown
    assert "hello" in shown and "skip" in shown
    with stack.client() as client:
        schedule = client.get(f"/api/v1/schedules/{name}").json()
    assert schedule["job"]["pipeline_name"] == "hello" and len(schedule["next_fires"]) == 5

    page.save_screenshot(str(screenshots / "schedules.png"))
    row.find_element(By.XPATH, ".//button[text()='Pause']").click()
    wait(page, lambda d: "paused" in (schedule_row(d, name) or row).text, "paused")
    wait(page, lambda d: schedule_row(d, name), "the row").find_element(
        By.XPATH, ".//button[text()='Resume']"
    ).click()
    wait(page, lambda d: "enabled" in (schedule_row(d, name) or row).text, "resumed")

    wait(page, lambda d: schedule_row(d, name), "the row").find_element(
        By.XPATH, ".//button[text()='Delete']"
    ).click()
    wait(page, lambda d: schedule_row(d, name) is None, "the schedule gone from the list")
    with stack.client() as client:
        assert client.get(f"/api/v1/schedules/{name}").status_code == 404


# --- The node timeline, the pipeline graph, the form's defaults --------------------------------


def timeline_rows(driver: WebDriver) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = driver.execute_script(
        """const rows = {};
        for (const g of document.querySelectorAll('#job-timeline g.tl-row')) {
          const bar = g.querySelector('rect.tl-bar');
          rows[g.dataset.node] = {state: g.dataset.state, seconds: g.dataset.seconds || '',
                                  compute: bar ? bar.dataset.compute || '' : ''};
        }
        return rows;"""
    )
    return found


def graph_states(driver: WebDriver) -> dict[str, str]:
    found: dict[str, str] = driver.execute_script(
        "return Object.fromEntries([...document.querySelectorAll('#job-graph g.graph-node')]"
        ".map((g) => [g.dataset.node, g.dataset.state]))"
    )
    return found


def test_the_form_starts_from_the_pipelines_parameter_defaults(
    page: WebDriver, stack: LocalStack
) -> None:
    open_hash(page, stack, "#/submit")
    choose_pipeline(page, "hello")
    box = page.find_element(By.ID, "submit-parameters")
    assert json.loads(box.get_attribute("value") or "") == {"hello": {"x": 21}}
    choose_pipeline(page, "reporting")
    defaults = json.loads(
        page.find_element(By.ID, "submit-parameters").get_attribute("value") or ""
    )
    assert defaults["reporting"] == {"top_n": 3, "delay_seconds": 0.0}
    assert defaults["data_loading"]["n_rows"] == 200
    # Submitted as it stands, the run gets exactly those values.
    page.find_element(By.ID, "submit-button").click()
    job_id = job_id_from_url(page)
    assert api_job(stack, job_id)["parameters"] == defaults
    wait_status(page, "completed")


def test_a_running_job_draws_a_live_timeline_and_the_pipelines_graph(
    page: WebDriver, stack: LocalStack, screenshots: Path
) -> None:
    # A run of the pipeline before: its node durations give the next run an ETA.
    with stack.client() as client:
        first = client.post("/api/v1/jobs", json={"pipeline_name": "reporting"}).json()
    wait(page, lambda d: api_job(stack, first["id"])["status"] == "completed", "a first run")
    job_id = submit_form(page, stack, "reporting", json.dumps({"reporting": {"delay_seconds": 8}}))
    wait(page, lambda d: timeline_rows(d).get("rank_regions", {}).get("state") == "running",
         "rank_regions running on the timeline")  # fmt: skip
    rows = timeline_rows(page)
    assert [rows[n]["state"] for n in ("rp_generate_orders", "rp_clean_orders")] == [
        "completed", "completed"
    ]  # fmt: skip
    assert rows["write_report"]["state"] == "pending" and rows["write_report"]["seconds"] == ""
    # Live: the running node's bar grows at each refresh.
    before = float(rows["rank_regions"]["seconds"])
    wait(page, lambda d: float(timeline_rows(d)["rank_regions"]["seconds"] or 0) > before + 1,
         "the running bar to grow")  # fmt: skip
    # An ETA from the first run's durations (this run's slow node outlasts it).
    assert "past runs" in text(page, "job-eta")
    # The graph: every node of the pipeline in its state, the datasets between them.
    assert graph_states(page) == {
        "rp_generate_orders": "done",
        "rp_clean_orders": "done",
        "rank_regions": "running",
        "write_report": "pending",
    }
    datasets = page.execute_script(
        "return [...document.querySelectorAll('#job-graph g.graph-dataset')]"
        ".map((g) => g.dataset.dataset)"
    )
    assert {"rp_raw_orders", "rp_clean_orders", "top_regions", "report"} <= set(datasets)
    page.set_window_size(1200, 1700)
    page.save_screenshot(str(screenshots / "job-timeline-running.png"))
    page.set_window_size(1200, 800)

    wait_status(page, "completed", timeout=90)
    wait(page, lambda d: {r["state"] for r in timeline_rows(d).values()} == {"completed"},
         "every node completed on the timeline")  # fmt: skip
    assert set(graph_states(page).values()) == {"done"}
    # The markdown report is shown as the text it is, not as a JSON string.
    report = page.find_element(By.CSS_SELECTOR, '#job-results-text [data-result="report"] pre')
    assert report.text.startswith("# Top regions\n\n1. ")
    assert api_job(stack, job_id)["nodes"][-1]["name"] == "write_report"


def test_segments_and_fargate_show_on_the_timeline(
    page: WebDriver, stack: LocalStack, screenshots: Path
) -> None:
    now = utcnow()
    start = now - timedelta(minutes=20)

    def at(seconds: float) -> str:
        return (start + timedelta(seconds=seconds)).isoformat()

    job = Job.model_validate(
        {
            "id": str(uuid.uuid4()),
            "pipeline_name": "reporting",
            "status": "completed",
            "created_at": at(0),
            "started_at": at(0),
            "completed_at": at(960),
            "execution_time": 960.0,
            "attempts": 3,
            "continuations": 2,
            "compute": "fargate",
            "progress": {"total_nodes": 4, "completed_nodes": 4},
            "segments": [
                {"segment": 1, "compute": "lambda", "started_at": at(0), "ended_at": at(300),
                 "nodes": ["rp_generate_orders", "rp_clean_orders"], "ended": "continued"},
                {"segment": 2, "compute": "fargate", "started_at": at(310), "ended_at": at(960),
                 "nodes": ["rank_regions", "write_report"], "ended": "completed"},
            ],
            "nodes": [
                {"name": "rp_generate_orders", "status": "completed", "started_at": at(0),
                 "duration": 100.0, "segment": 1, "compute": "lambda"},
                {"name": "rp_clean_orders", "status": "completed", "started_at": at(100),
                 "duration": 150.0, "segment": 1, "compute": "lambda"},
                {"name": "rank_regions", "status": "completed", "started_at": at(310),
                 "duration": 600.0, "segment": 2, "compute": "fargate"},
                {"name": "write_report", "status": "completed", "started_at": at(910),
                 "duration": 50.0, "segment": 2, "compute": "fargate"},
            ],
        }
    )  # fmt: skip
    dynamodb = boto3.client("dynamodb", endpoint_url=stack.endpoint_url, region_name="us-east-1")
    dynamodb.put_item(TableName="kedro-jobs-jobs", Item=to_item(job))
    open_hash(page, stack, f"#/jobs/{job.id}")
    wait(page, lambda d: timeline_rows(d).get("write_report", {}).get("seconds") == "50.000",
         "this job's timeline")  # fmt: skip
    rows = timeline_rows(page)
    assert (
        rows["rank_regions"]["compute"] == "fargate"
        and rows["rp_clean_orders"]["compute"] == "lambda"
    )
    assert float(rows["rank_regions"]["seconds"]) == 600.0
    marker = page.find_element(By.CSS_SELECTOR, '#job-timeline line.tl-segment[data-segment="2"]')
    assert marker is not None
    assert "segment 2 · fargate" in text(page, "job-timeline")
    # Attempts say what they count: two went on from a checkpoint, none was a retry.
    summary = text(page, "job-summary")
    assert "3 claims by a consumer" in summary and "2 went on from a checkpoint" in summary
    page.set_window_size(1200, 1300)
    page.save_screenshot(str(screenshots / "job-timeline-segments.png"))
    page.set_window_size(1200, 800)


def test_a_failed_job_shows_no_results_box_and_its_times_say_their_zone(
    page: WebDriver, stack: LocalStack, seeded: list[Job]
) -> None:
    failed = next(j for j in reversed(seeded) if j.status is JobStatus.FAILED)
    open_hash(page, stack, f"#/jobs/{failed.id}")
    wait(page, lambda d: "seeded failure" in text(d, "job-error"), "the error")
    assert not page.find_element(By.ID, "job-results-box").is_displayed()
    # The page's browser runs in UTC here; the times say so.
    assert "UTC" in text(page, "job-summary")


# --- Rerun from failure ------------------------------------------------------------------------


def test_a_cancelled_job_is_rerun_from_failure_with_its_button(
    page: WebDriver, stack: LocalStack, screenshots: Path
) -> None:
    """A reporting job cancelled while its slow third node runs keeps what its three completed
    nodes made; the button on its page makes a job that runs only the last node."""
    job_id = submit_form(page, stack, "reporting", json.dumps({"reporting": {"delay_seconds": 6}}))
    wait(page, lambda d: node_states(d).get("rank_regions") == "running", "rank_regions running")
    # A running job offers no rerun: only a stopped one that kept its nodes' outputs.
    assert not page.find_element(By.ID, "job-rerun").is_displayed()
    page.find_element(By.ID, "job-cancel").click()
    wait_status(page, "cancelled", timeout=60)
    rerun = wait(
        page,
        lambda d: (b := d.find_element(By.ID, "job-rerun")).is_displayed() and b.is_enabled() and b,
        "the Rerun from failure button",
    )
    assert "outputs are kept until" in text(page, "job-summary")

    rerun.click()

    wait(page, lambda d: not d.current_url.endswith(job_id), "the rerun's page")
    new_id = job_id_from_url(page)
    wait_status(page, "completed", timeout=90)
    wait(
        page,
        lambda d: timeline_rows(d).get("write_report", {}).get("state") == "completed",
        "the last node completed on the timeline",
    )
    rows = timeline_rows(page)
    assert {name: row["state"] for name, row in rows.items()} == {
        "rp_generate_orders": "reused",
        "rp_clean_orders": "reused",
        "rank_regions": "reused",
        "write_report": "completed",
    }
    summary = text(page, "job-summary")
    assert f"Reused from{job_id} (3 nodes not run again)" in summary
    record = api_job(stack, new_id)
    assert record["retry_of"] == job_id and record["reused_from"] == job_id
    assert [s["nodes"] for s in record["segments"]] == [["write_report"]]
    assert not page.find_element(By.ID, "job-rerun").is_displayed()  # it completed
    page.set_window_size(1200, 1300)
    page.save_screenshot(str(screenshots / "job-rerun-from-failure.png"))
    page.set_window_size(1200, 800)


# --- Compute backends --------------------------------------------------------------------------


def test_the_form_offers_the_compute_backends_of_the_registry(
    page: WebDriver, stack: LocalStack
) -> None:
    """The form's compute choices come from the backends' registry (GET /api/v1/compute), not
    from the page: the local stack offers every one, the default chosen."""
    open_hash(page, stack, "#/submit")
    choose_pipeline(page, "hello")
    select = wait(
        page,
        lambda d: (s := Select(d.find_element(By.ID, "opt-compute"))).options and s,
        "the compute choices",
    )
    shown = [(o.get_attribute("value"), o.text, o.is_enabled()) for o in select.options]
    assert shown == [(b.name, f"{b.name} ({b.description})", True) for b in BACKENDS.values()]
    assert select.first_selected_option.get_attribute("value") == DEFAULT

    select.select_by_value("fargate")
    before = page.current_url
    page.find_element(By.ID, "submit-button").click()
    wait(page, lambda d: d.current_url != before and "#/jobs/" in d.current_url, "submitted")
    job_id = job_id_from_url(page)
    assert api_job(stack, job_id)["compute"] == "fargate"
    with stack.client() as client:  # its task need not run: this test is about the form
        client.post(f"/api/v1/jobs/{job_id}/cancel")
