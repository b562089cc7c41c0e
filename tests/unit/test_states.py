import pytest

from kedro_jobs.core.states import TERMINAL, JobStatus, can_transition, sources_of


def test_the_documented_transitions() -> None:
    assert can_transition(JobStatus.PENDING, JobStatus.RUNNING)
    assert can_transition(JobStatus.PENDING, JobStatus.CANCELLED)
    assert can_transition(JobStatus.RUNNING, JobStatus.COMPLETED)
    assert can_transition(JobStatus.RUNNING, JobStatus.FAILED)
    assert can_transition(JobStatus.RUNNING, JobStatus.CANCELLED)


def test_terminal_states_are_final() -> None:
    for status in TERMINAL:
        assert status.terminal
        assert not any(can_transition(status, target) for target in JobStatus)


def test_a_job_cannot_complete_without_running() -> None:
    assert sources_of(JobStatus.COMPLETED) == (JobStatus.RUNNING,)


def test_the_store_conditions_a_status_change_only_on_a_transition_of_the_table() -> None:
    from kedro_jobs.core.store.expressions import Placeholders, moving

    placeholders = Placeholders()
    assert moving(JobStatus.PENDING, JobStatus.RUNNING).render(placeholders) == "#status = :v0"
    assert placeholders.values == {":v0": {"S": "pending"}}
    with pytest.raises(ValueError, match="no transition"):
        moving(JobStatus.COMPLETED, JobStatus.RUNNING)
