"""Schemathesis over the gateway's merged OpenAPI document, against the real platform.

Every operation gets its documented examples, the coverage phase's boundary and invalid
values, and generated valid and invalid requests; then sequences of operations chained by
the links the document implies. Every check runs: no 5xx, answers match their documented
status, content type, headers and schema, invalid data refused, valid data accepted.
"""

import hypothesis
import pytest
import schemathesis

from tests.fuzz.settings import FuzzSettings

pytestmark = pytest.mark.integration

schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
def test_every_operation_answers_as_documented(case: schemathesis.Case) -> None:
    case.call_and_validate()


def test_sequences_of_operations_answer_as_documented(
    api_schema: schemathesis.BaseSchema, fuzz_settings: FuzzSettings
) -> None:
    machine = api_schema.as_state_machine()
    machine.run(settings=hypothesis.settings(
        max_examples=fuzz_settings.stateful_examples,
        stateful_step_count=fuzz_settings.stateful_steps,
        deadline=None,
        database=None,
        # Each step depends on what the platform holds by then, so a failing sequence cannot
        # be replayed identically to shrink it; it is reported as found.
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        derandomize=fuzz_settings.seed is not None,
        suppress_health_check=list(hypothesis.HealthCheck),
    ))
