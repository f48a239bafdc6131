"""The relay publishes a round's rows as record batches per partition: every row once, each on
the partition the producers' default partitioner gives its key, and each key's rows in the
order they were written, across rounds and across batches that filled up."""

import uuid
from collections import defaultdict
from pathlib import Path

import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner

from fulfilkit import contracts as c
from fulfilkit.db import create_pool, migrate
from fulfilkit.kafka import make_producer
from fulfilkit.outbox import OutboxRelay, outbox_insert
from fulfilkit.supervise import Supervisor
from tests.kafka_tools import read_all
from tests.support import eventually, ref

pytestmark = pytest.mark.integration

# No service consumes dead-letter topics: rows sent there touch nothing else in the suite.
TOPIC = c.dlq_topic(c.STOCK_TOPIC)


async def test_rows_go_out_in_batches_in_order_per_key_on_the_default_partition(
    infrastructure, tmp_path: Path
):
    schema = ref("batches").replace("-", "_")
    run = uuid.uuid4()
    keys = [f"{run}:{n}" for n in range(40)]
    # 3,000 rows of ~4 KB: several rounds of 500, batches of 256 KiB that fill up
    rows = [(keys[n % len(keys)], n) for n in range(3000)]
    pool = await create_pool(infrastructure.database_url)
    producer = make_producer(infrastructure.bootstrap_servers)
    await producer.start()
    loops = Supervisor(first_delay=0.1, max_delay=1.0)
    try:
        await migrate(pool, schema, tmp_path)
        await pool.execute(
            outbox_insert(schema, 1),
            [uuid.uuid4() for _ in rows],
            [TOPIC] * len(rows),
            [key for key, _ in rows],
            [orjson.dumps({"n": n, "pad": "x" * 4000}) for _, n in rows],
            [c.STOCK_CHANGED] * len(rows),
            [None] * len(rows),
        )
        relay = OutboxRelay(pool, schema, producer, batch_size=500, poll_interval=0.2)
        loops.start("outbox_relay", relay.run)
        await eventually(
            lambda: pool.fetchval(f"SELECT count(*) FROM {schema}.outbox"),
            lambda left: left == 0,
            timeout=60,
            what="the outbox to empty",
        )

        found = [
            r
            for r in await read_all(infrastructure.bootstrap_servers, TOPIC, timeout=60)
            if r.key is not None and r.key.decode().startswith(str(run))
        ]
        by_key: dict[str, list[int]] = defaultdict(list)
        partitions = sorted(await producer.partitions_for(TOPIC))
        for record in sorted(found, key=lambda r: (r.partition, r.offset)):
            assert record.partition == DefaultPartitioner()(record.key, partitions, partitions)
            assert dict(record.headers)["content-type"] == b"application/cloudevents+json"
            by_key[record.key.decode()].append(orjson.loads(record.value)["n"])
        assert len(found) == len(rows)
        for key in keys:
            assert by_key[key] == [n for k, n in rows if k == key]
        assert relay.parked == 0
    finally:
        await loops.stop()
        await producer.stop()
        await pool.close()
