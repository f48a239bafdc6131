"""Schemathesis over the gateway's merged OpenAPI document, against the real platform.

Every operation gets its documented examples, the coverage phase's boundary and invalid
values, and generated valid and invalid requests; then sequences of operations chained by
the links the document implies. Every check runs: no 5xx, answers match their documented
status, content type, headers and schema, invalid data refused, valid data accepted.
"""

import warnings

import hypothesis
import pytest
import schemathesis
from hypothesis.errors import Flaky
from schemathesis.core.failures import FailureGroup

from tests.fuzz.settings import FuzzSettings

pytestmark = pytest.mark.integration

schema = schemathesis.pytest.from_fixture("api_schema")
# Each scenario restarts on what the platform holds by then, so Hypothesis may find that a
# choice it made before now leads elsewhere; the run then starts over, as schemathesis' own
# runner does, a bounded number of times.
RESTARTS = 3


@schema.parametrize()
def test_every_operation_answers_as_documented(case: schemathesis.Case) -> None:
    case.call_and_validate()


def test_sequences_of_operations_answer_as_documented(
    api_schema: schemathesis.BaseSchema, fuzz_settings: FuzzSettings
) -> None:
    machine = api_schema.as_state_machine()
    settings = hypothesis.settings(
        max_examples=fuzz_settings.stateful_examples,
        stateful_step_count=fuzz_settings.stateful_steps,
        deadline=None,
        database=None,
        derandomize=fuzz_settings.seed is not None,
        # A failing sequence cannot be replayed identically to shrink it: reported as found.
        phases=[hypothesis.Phase.generate],
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    for _ in range(RESTARTS):
        try:
            machine.run(settings=settings)
            return
        except Flaky as flaky:
            found = check_failures(flaky)
            if found is not None:
                raise found from None
            settings = hypothesis.settings(settings, derandomize=False)
    warnings.warn(f"the sequences started over {RESTARTS} times; none failed a check",
                  stacklevel=1)


def check_failures(error: BaseException) -> FailureGroup | None:
    """The failed checks a flaky replay carries, if any."""
    if isinstance(error, FailureGroup):
        return error
    for inner in getattr(error, "exceptions", ()):
        found = check_failures(inner)
        if found is not None:
            return found
    return None
