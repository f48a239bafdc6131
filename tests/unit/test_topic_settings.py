"""Topic settings: the local single broker's defaults, and nonsense refused at start."""

import pytest
from pydantic import ValidationError

from fulfilkit.kafka import topic_configs
from fulfilkit.settings import ServiceSettings


def settings(**values: object) -> ServiceSettings:
    return ServiceSettings(environment="development", **values)


def test_defaults_suit_one_broker():
    s = settings()
    assert (s.kafka_replication_factor, s.kafka_min_insync_replicas) == (1, 1)
    assert s.kafka_retention_ms == 7 * 86_400_000
    assert s.kafka_dlq_retention_ms > s.kafka_retention_ms


def test_production_values_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("KAFKA_REPLICATION_FACTOR", "3")
    monkeypatch.setenv("KAFKA_MIN_INSYNC_REPLICAS", "2")
    monkeypatch.setenv("KAFKA_RETENTION_MS", "-1")
    s = settings()
    assert (s.kafka_replication_factor, s.kafka_min_insync_replicas) == (3, 2)
    assert s.kafka_retention_ms == -1


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"kafka_replication_factor": 2, "kafka_min_insync_replicas": 3}, "is larger than"),
        ({"kafka_replication_factor": 0}, "greater than or equal to 1"),
        ({"kafka_retention_ms": 0}, "delete every record"),
        ({"kafka_dlq_retention_ms": -2}, "greater than or equal to -1"),
    ],
)
def test_nonsense_is_refused(values: dict, message: str):
    with pytest.raises(ValidationError, match=message):
        settings(**values)


def test_dead_letter_topics_keep_their_own_retention():
    assert topic_configs("sales.events", 2, 1000, 5000) == {
        "min.insync.replicas": "2",
        "retention.ms": "1000",
    }
    assert topic_configs("sales.events.dlq", 2, 1000, 5000)["retention.ms"] == "5000"
