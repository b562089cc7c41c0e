"""Why a fan-out execution's message last failed (docs/fan-out.md): the consumer notes it on
the job's item as the message goes back to the queue, and, should every delivery fail, the
dead-letter function reads it to say what was lost and why. One attribute, kept out of the
record (not a field of the job): the last failure of any of the job's messages, with whose."""

from __future__ import annotations

from kedro_jobs.core.aws import aws_errors, error_code
from kedro_jobs.core.store.table import DEPENDENCY, Table

TASK_ERROR = "fan_out_task_error"
_MAX_CHARS = 1000


class TaskErrorNotes(Table):
    """The consumer's side: it notes the failure."""

    def note_task_error(self, job_id: str, task: str, error: str) -> None:
        """``task`` (``g2``, ``commit``, ``discard``) of the running job failed with ``error``.
        Best effort: a job that ended or is gone is not written."""
        with aws_errors(DEPENDENCY):
            try:
                self.client.update_item(
                    TableName=self.table_name,
                    Key={"id": {"S": job_id}},
                    UpdateExpression="SET #e = :e",
                    ConditionExpression="attribute_exists(id) AND #st = :running",
                    ExpressionAttributeNames={"#e": TASK_ERROR, "#st": "status"},
                    ExpressionAttributeValues={
                        ":e": {"M": {"task": {"S": task}, "error": {"S": error[:_MAX_CHARS]}}},
                        ":running": {"S": "running"},
                    },
                )
            except Exception as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise


class TaskErrorReads(Table):
    """The dead-letter function's side: it reads the failure."""

    def task_error(self, job_id: str, task: str) -> str | None:
        """The last failure noted for ``task`` of the job, if it was the last one noted."""
        with aws_errors(DEPENDENCY):
            resp = self.client.get_item(
                TableName=self.table_name,
                Key={"id": {"S": job_id}},
                ConsistentRead=True,
                ProjectionExpression="#e",
                ExpressionAttributeNames={"#e": TASK_ERROR},
            )
        noted = (resp.get("Item") or {}).get(TASK_ERROR, {}).get("M") or {}
        if noted.get("task", {}).get("S") != task:
            return None
        error = noted.get("error", {}).get("S")
        return str(error) if error else None
