"""While the broker is away, aiokafka's errors become one line every few seconds."""

import logging

from fulfilkit.logs import BrokerNoise


def test_broker_noise_lets_one_line_through_per_interval_and_says_what_it_left_out() -> None:
    noise = BrokerNoise(interval=60)
    logger = logging.getLogger("aiokafka.conn")

    def record(name: str = "aiokafka", level: int = logging.ERROR) -> logging.LogRecord:
        return logger.makeRecord(
            name, level, __file__, 1, "Unable connect to node with id %s", (1,), None
        )

    first = record()
    assert noise.filter(first)
    assert first.levelname == "WARNING"
    assert first.getMessage().startswith("Kafka broker unreachable for 0s (0 similar lines left")
    assert first.getMessage().endswith("Unable connect to node with id 1")
    assert not any(noise.filter(record("aiokafka.consumer.fetcher")) for _ in range(50))
    assert noise.left_out == 50
    assert not noise.filter(record(level=logging.WARNING)), "warnings during an outage too"
    assert noise.left_out == 51
    assert noise.filter(record("faststream")), "other sources pass"
    assert noise.filter(record(level=logging.INFO)), "below warning passes"
    assert noise.outage_since is not None
    noise.recovered()
    assert noise.outage_since is None
    assert noise.filter(record(level=logging.WARNING)), "a warning alone is no outage"
    assert noise.outage_since is None
    assert noise.filter(record()), "a new outage speaks again"
    assert noise.outage_since is not None
