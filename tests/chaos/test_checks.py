"""The chaos checks' own check: the dead-letter count sees records on a topic, so a fault
that dead-letters an event cannot pass unnoticed."""

import uuid

import pytest

from fulfilkit.kafka import ensure_topics
from tests.chaos.checks import records_in
from tests.kafka_tools import produce

pytestmark = pytest.mark.integration


async def test_records_in_counts_every_partition_and_a_missing_topic_as_none(infrastructure):
    bootstrap = infrastructure.bootstrap_servers
    topic = f"checks-{uuid.uuid4().hex[:8]}.dlq"
    missing = f"checks-{uuid.uuid4().hex[:8]}.absent"
    await ensure_topics(bootstrap, [topic], partitions=3)
    assert await records_in(bootstrap, [topic, missing]) == 0

    await produce(bootstrap, topic, [(f"key-{i}".encode(), b"{}") for i in range(5)])

    assert await records_in(bootstrap, [topic, missing]) == 5
