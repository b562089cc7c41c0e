"""The ``lambda`` backend (the default): the consumer Lambda runs the job itself, in segments
of one invocation each, going on from a checkpoint at a node boundary when it needs longer
(docs/long-jobs.md). Every deployment offers it."""

from __future__ import annotations

from kedro_jobs.core.compute.base import InConsumer


class LambdaBackend(InConsumer):
    name = "lambda"
    description = "continues across invocations"


LAMBDA = LambdaBackend()
