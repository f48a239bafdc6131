"""Which errors of Kafka's park an outbox row, and which the relay waits out."""

from aiokafka import errors

from fulfilkit.outbox import Refusal, refusal


def test_the_relay_parks_what_kafka_refuses_for_the_row_and_waits_out_outages() -> None:
    assert refusal(errors.MessageSizeTooLargeError()) is Refusal.PERMANENT
    assert refusal(errors.RecordTooLargeError()) is Refusal.PERMANENT
    assert refusal(errors.InvalidTopicError()) is Refusal.PERMANENT
    for outage in (
        errors.KafkaConnectionError(),
        errors.KafkaTimeoutError(),
        errors.NotLeaderForPartitionError(),
        errors.RequestTimedOutError(),
        errors.ProducerClosed(),
        TimeoutError(),
        ConnectionResetError(),
    ):
        assert refusal(outage) is Refusal.OUTAGE, outage
    # anything else is parked only when it keeps coming back for the same row
    assert refusal(errors.TopicAuthorizationFailedError()) is Refusal.UNKNOWN
    assert refusal(ValueError("?")) is Refusal.UNKNOWN
