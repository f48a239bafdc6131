"""The topics the platform creates carry the replication, `min.insync.replicas` and retention
its settings give (dead-letter topics their own retention); a topic made earlier with other
values is left alone and named in a warning; a replication factor the cluster cannot honour
stops the start."""

import logging

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from fulfilkit.kafka import ensure_topics
from tests.support import eventually, ref

pytestmark = pytest.mark.integration

KEYS = ("min.insync.replicas", "retention.ms")


async def described(bootstrap: str, names: list[str]) -> dict[str, dict]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, n, dict.fromkeys(KEYS)) for n in names]
        )
        topics = {t["topic"]: t for t in await admin.describe_topics(names)}
    finally:
        await admin.close()
    configs = {
        resource[3]: {entry[0]: entry[1] for entry in resource[4]}
        for response in responses
        for resource in response.resources
    }
    return {
        name: {
            **configs.get(name, {}),
            "partitions": len(topics[name]["partitions"]),
            "replicas": {len(p["replicas"]) for p in topics[name]["partitions"]},
        }
        for name in names
    }


async def test_created_topics_carry_the_configured_retention_and_replicas(
    infrastructure, caplog: pytest.LogCaptureFixture
):
    topic = ref("topicset").replace(":", "-")
    names = [topic, f"{topic}.dlq"]
    bootstrap = infrastructure.bootstrap_servers
    await ensure_topics(
        bootstrap, names, 3, 1, min_insync_replicas=1, retention_ms=3_600_000,
        dlq_retention_ms=-1,
    )  # fmt: skip

    # Topic metadata reaches every broker shortly after the creation is acknowledged.
    found = await eventually(
        lambda: described(bootstrap, names),
        lambda f: all(f[n]["partitions"] and len(f[n]) == 4 for n in names),
        what="the new topics' metadata",
    )
    assert found[topic] == {
        "min.insync.replicas": "1",
        "retention.ms": "3600000",
        "partitions": 3,
        "replicas": {1},
    }
    assert found[f"{topic}.dlq"]["retention.ms"] == "-1"

    # Started again with another retention: the topic keeps its own, the operator is told.
    with caplog.at_level(logging.WARNING, logger="fulfilkit.kafka"):
        await ensure_topics(bootstrap, names, 3, 1, retention_ms=7_200_000, dlq_retention_ms=-1)
    assert (await described(bootstrap, [topic]))[topic]["retention.ms"] == "3600000"
    [warning] = [r.getMessage() for r in caplog.records if topic in r.getMessage()]
    assert "retention.ms=3600000 where the settings say retention.ms=7200000" in warning
    assert f"--entity-name {topic} --add-config retention.ms=7200000" in warning

    # ... and with more partitions and replicas than the topic has: left alone, told.
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="fulfilkit.kafka"):
        await ensure_topics(bootstrap, names, 6, 3, min_insync_replicas=2, dlq_retention_ms=-1)
    assert (await described(bootstrap, [topic]))[topic]["partitions"] == 3
    warnings = [r.getMessage() for r in caplog.records if f"topic {topic} " in r.getMessage()]
    assert any(
        "3 partitions and replication factor 1 where the settings say 6 and 3" in w
        for w in warnings
    ), warnings
    assert any(
        "has min.insync.replicas=1, retention.ms=3600000 where the settings say"
        " min.insync.replicas=2" in w
        for w in warnings
    ), warnings


async def test_a_replication_factor_larger_than_the_cluster_stops_the_start(infrastructure):
    topic = ref("toomany").replace(":", "-")
    with pytest.raises(
        RuntimeError, match=f"cannot create topic {topic} .*InvalidReplicationFactorError"
    ):
        await ensure_topics(infrastructure.bootstrap_servers, [topic], 1, 3, min_insync_replicas=2)
