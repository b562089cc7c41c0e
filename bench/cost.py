"""Cost on paper: dollars per million jobs on AWS, from the template's memory sizes, measured
durations and the requests the code makes per job, against an always-on two-worker Celery +
Redis deployment of the old design.

Prices: AWS list prices for us-east-1 as published in 2025 (the latest this project could
read; no network here), x86 Lambda, on-demand DynamoDB, standard SQS, S3 Standard, HTTP API.
"""

from __future__ import annotations

from typing import Any

PRICES = {
    "lambda_gb_second": 0.0000166667,
    "lambda_request": 0.20 / 1e6,
    "http_api_request": 1.00 / 1e6,
    "sqs_request": 0.40 / 1e6,
    "dynamodb_write_unit": 0.625 / 1e6,
    "dynamodb_read_unit": 0.125 / 1e6,
    "s3_put": 0.005 / 1000,
    "s3_get": 0.0004 / 1000,
    "step_functions_transition": 25.0 / 1e6,  # standard workflows
    # The old design, always on: 2 worker VMs (t3.medium), 1 API VM (t3.small), Redis
    # (cache.t3.micro), per hour.
    "t3_medium_hour": 0.0416,
    "t3_small_hour": 0.0208,
    "cache_t3_micro_hour": 0.017,
}
PRICES_SOURCE = "AWS us-east-1 list prices, 2025 (as recalled offline; check before relying)"


def per_job_requests(nodes: int, *, slow_first_node: bool) -> dict[str, float]:
    """What one job costs in requests, counted from the code paths (API submit + consumer):
    create, claim, progress after each node but the last (and at the start when the first
    node runs over 0.25 s), finish."""
    progress_writes = (nodes - 1) + (1 if slow_first_node else 0)
    # The indexes hold keys only (by_user_pipeline the status too). The create writes the
    # item and its three index entries; each status change (claim, finish) writes the item,
    # moves the job in by_user_status (a delete and a put) and rewrites its status in
    # by_user_pipeline; a progress write touches the item alone. Items stay under 1 KB but
    # for large results (up to 32 KB inline: 32 units on the final write, not 4 x 32).
    write_units = (1 + 3) + 2 * (1 + 2 + 1) + progress_writes
    return {
        "http_api": 1,  # the submit (polls are extra: 1 GET each)
        "lambda_api_invocations": 1,
        "lambda_consumer_invocations": 1,  # batch size 1
        "sqs": 3,  # send, receive (event source mapping), delete
        "dynamodb_write_units": write_units,
        "dynamodb_read_units": 0.5 * 1,  # one eventually-consistent-priced manifest-free get
        "s3_put": 1,  # the run's log (results over 32 KB add one)
    }


def dollars_per_million(
    consumer_seconds: float,
    api_seconds: float,
    nodes: int,
    *,
    slow_first_node: bool,
    consumer_gb: float = 2.0,
) -> dict[str, float]:
    requests = per_job_requests(nodes, slow_first_node=slow_first_node)
    p = PRICES
    items = {
        "lambda_consumer_compute": consumer_seconds * consumer_gb * p["lambda_gb_second"],
        "lambda_api_compute": api_seconds * 0.5 * p["lambda_gb_second"],
        "lambda_requests": 2 * p["lambda_request"],
        "http_api": requests["http_api"] * p["http_api_request"],
        "sqs": requests["sqs"] * p["sqs_request"],
        "dynamodb": requests["dynamodb_write_units"] * p["dynamodb_write_unit"]
        + requests["dynamodb_read_units"] * p["dynamodb_read_unit"],
        "s3": requests["s3_put"] * p["s3_put"],
    }
    per_million = {k: v * 1e6 for k, v in items.items()}
    per_million["total"] = sum(per_million.values())
    return per_million


def fan_out_extra_per_million(levels: int, groups: int, nodes: int) -> dict[str, float]:
    """What fanning a job out adds (docs/fan-out.md), in dollars per million jobs, counted
    from the code paths: the execution's state transitions (levels' Map, one inner Map per
    level, one task per group, the commit); one more consumer invocation per group and for
    the commit, each from an SQS message (send by the state machine, receive, delete); a
    heartbeat and an answer to Step Functions per message (free API calls); the record's
    writes (the plan, each group's claim and end, progress after each node); each group's
    hand-over (handover.json, a value, a log: about 3 PUTs) read by the groups after it and
    the commit (about 3 GETs a group)."""
    p = PRICES
    messages = groups + 1
    items = {
        "step_functions": (1 + levels + groups + 1) * p["step_functions_transition"],
        "lambda_requests": messages * p["lambda_request"],
        "sqs": 3 * messages * p["sqs_request"],
        "dynamodb": (1 + 2 * groups + nodes) * p["dynamodb_write_unit"],
        "s3": 3 * groups * p["s3_put"] + 3 * groups * p["s3_get"],
    }
    per_million = {k: v * 1e6 for k, v in items.items()}
    per_million["total"] = sum(per_million.values())
    return per_million


def celery_monthly() -> float:
    p = PRICES
    hourly = 2 * p["t3_medium_hour"] + p["t3_small_hour"] + p["cache_t3_micro_hour"]
    return hourly * 730


def estimate(trivial_consumer_s: float, api_s: float, kedro_run_s: float) -> dict[str, Any]:
    trivial = dollars_per_million(trivial_consumer_s, api_s, nodes=2, slow_first_node=False)
    minute = dollars_per_million(60.0 + trivial_consumer_s, api_s, nodes=5, slow_first_node=True)
    monthly = celery_monthly()
    # Two t3.medium workers, 2 vCPU each, one job per vCPU at a time.
    celery_capacity_trivial = 4 / kedro_run_s * 3600 * 730
    celery_capacity_minute = 4 / (60.0 + kedro_run_s) * 3600 * 730
    return {
        "prices": PRICES,
        "prices_source": PRICES_SOURCE,
        "per_job_requests_trivial": per_job_requests(2, slow_first_node=False),
        "serverless_per_million_trivial": trivial,
        "serverless_per_million_one_minute": minute,
        "celery_monthly_fixed": monthly,
        "celery_max_jobs_per_month_trivial": celery_capacity_trivial,
        "celery_max_jobs_per_month_one_minute": celery_capacity_minute,
        "celery_per_million_at_capacity_trivial": monthly / celery_capacity_trivial * 1e6,
        "celery_per_million_at_capacity_one_minute": monthly / celery_capacity_minute * 1e6,
        "break_even_jobs_per_month_trivial": monthly / trivial["total"] * 1e6,
        "break_even_jobs_per_month_one_minute": monthly / minute["total"] * 1e6,
        # 4 branches of one node and a join: 2 levels, 5 groups, 5 nodes.
        "fan_out_extra_per_million_4_branches": fan_out_extra_per_million(2, 5, 5),
        # The modular project (tests/support/modular_project.py): clean, 4 namespaced model
        # pipelines of 4 nodes, compare: 3 levels, 6 groups, 18 nodes.
        "fan_out_extra_per_million_modular": fan_out_extra_per_million(3, 6, 18),
    }
