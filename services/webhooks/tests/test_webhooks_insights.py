"""What the delivery log keeps of an attempt's headers, and an endpoint's success rate."""

from webhooks.domain import EndpointStats, recorded_headers
from webhooks.signing import request_headers


def test_recorded_headers_drop_the_signature_and_mask_custom_values():
    custom = {"X-Shop-Token": "s3cret", "User-Agent": "erp/1"}
    sent = request_headers(["whsec_" + "A" * 32], "msg_1", 1700000000, b"{}", custom)
    kept = recorded_headers({**sent, "traceparent": "00-ab-cd-01"}, custom)
    assert kept == {
        "X-Shop-Token": "***",
        "User-Agent": "***",
        "content-type": "application/json",
        "webhook-id": "msg_1",
        "webhook-timestamp": "1700000000",
        "traceparent": "00-ab-cd-01",
    }
    assert "s3cret" not in str(kept)


def test_success_rate_of_finished_deliveries():
    assert EndpointStats().success_rate is None
    assert EndpointStats(deliveries=4, failed=1).success_rate == 0.75
    assert EndpointStats(deliveries=3, failed=3).success_rate == 0.0
