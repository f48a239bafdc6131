"""How the chaos suite sorts what clients saw into allowed and not allowed answers."""

from collections import Counter

from tests.chaos.checks import Findings
from tests.chaos.faults import SHORT, by_kind
from tests.chaos.load import Answer, outcome
from tests.chaos.report import passed
from tests.chaos.run import Row

PROBLEM = {"Content-Type": "application/problem+json"}


def test_a_503_counts_as_clear_only_with_problem_json_and_retry_after():
    assert outcome(Answer(503, {}, {**PROBLEM, "Retry-After": "1"})) == "503"
    assert outcome(Answer(503, {}, PROBLEM)) == "503 bare"
    assert (
        outcome(Answer(503, {}, {"Content-Type": "text/plain", "Retry-After": "1"})) == "503 bare"
    )


def test_other_answers_are_named_by_status_or_by_what_went_wrong():
    assert outcome(Answer(201, {}, {})) == "2xx"
    assert outcome(Answer(409, {}, PROBLEM)) == "409"
    assert outcome(Answer(500, {}, PROBLEM)) == "500"
    assert outcome(None, "hang") == "hang"
    assert outcome(None) == "conn"


def row(seen: Counter[str], findings: Findings | None = None) -> Row:
    return Row("fault", 3.0, seen, findings or Findings(), sales=10, settle_seconds=0.0)


def test_a_refused_connection_is_allowed_only_while_the_gateway_is_down():
    seen = Counter({"2xx": 5, "503": 2, "409": 1, "conn": 3})
    gateway, orders = by_kind(SHORT, "service", "gateway"), by_kind(SHORT, "service", "orders")
    assert row(seen).bad(gateway) == Counter()
    assert passed(gateway, row(seen))
    assert row(seen).bad(orders) == Counter({"conn": 3})
    assert not passed(orders, row(seen))


def test_a_500_a_hang_a_finding_or_no_recovery_fails_the_fault():
    postgres = by_kind(SHORT, "postgres")
    assert not passed(postgres, row(Counter({"2xx": 5, "500": 1})))
    assert not passed(postgres, row(Counter({"2xx": 5, "hang": 1})))
    assert not passed(postgres, row(Counter({"2xx": 5}), Findings(lost=["sale S-1"])))
    never = Row("fault", None, Counter({"2xx": 5}), Findings(), sales=5, settle_seconds=0.0)
    assert not passed(postgres, never)
