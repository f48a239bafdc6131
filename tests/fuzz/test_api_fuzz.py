"""Schemathesis over the gateway's merged OpenAPI document, against the real platform.

Every operation gets its documented examples, the coverage phase's boundary and invalid
values, and generated valid and invalid requests; then sequences of operations chained by
the links the document implies. Every check runs: no 5xx, answers match their documented
status, content type, headers and schema, invalid data refused, valid data accepted.
"""

from collections.abc import Callable

import pytest
import schemathesis
from schemathesis.engine import Status, events, from_schema
from schemathesis.engine.recorder import ScenarioRecorder

from tests.fuzz.settings import FuzzSettings

pytestmark = pytest.mark.integration

schema = schemathesis.pytest.from_fixture("api_schema")
MAX_ROUNDS = 20


@schema.parametrize()
def test_every_operation_answers_as_documented(case: schemathesis.Case) -> None:
    case.call_and_validate()


def test_sequences_of_operations_answer_as_documented(
    stateful_schemas: Callable[[int], schemathesis.BaseSchema],
    fuzz_settings: FuzzSettings,
) -> None:
    # Schemathesis' own runner. Each sequence depends on what the platform holds by then, so
    # Hypothesis soon finds a choice it made earlier leading elsewhere; the runner then ends
    # the round as passed (the pytest state machine would fail), and the next round goes on.
    failures, errors, scenarios, calls, rounds = [], [], 0, 0, 0
    while scenarios < fuzz_settings.stateful_examples and rounds < MAX_ROUNDS:
        rounds += 1
        for event in from_schema(stateful_schemas(rounds)).execute():
            if isinstance(event, events.ScenarioFinished):
                scenarios += 1
                calls += len(event.recorder.interactions)
                if event.status == Status.FAILURE:
                    failures.extend(failed_checks(event.recorder))
            elif isinstance(event, events.NonFatalError | events.FatalError):
                errors.append(repr(getattr(event, "value", None) or event.exception))
    print(f"{scenarios} sequences, {calls} requests in {rounds} rounds")
    assert not errors, "\n".join(errors)
    assert not failures, "\n\n".join(dict.fromkeys(failures))
    assert scenarios > 0, "no sequence ran"


def failed_checks(recorder: ScenarioRecorder) -> list[str]:
    return [
        f"{check.name}: {check.failure_info.failure.title}\n"
        f"{check.failure_info.failure.message}\n{check.failure_info.code_sample}"
        for checks in recorder.checks.values()
        for check in checks
        if check.failure_info is not None
    ]
