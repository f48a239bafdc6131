"""Signatures verify with the reference Standard Webhooks library."""

import base64
import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from webhooks.signing import USER_AGENT, new_secret, request_headers

BODY = b'{"type":"sale.created","timestamp":"2025-01-02T03:04:05Z","data":{"version":1}}'


def test_secret_is_whsec_with_at_least_24_random_bytes() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) >= 24
    assert new_secret() != secret


def test_signature_verifies() -> None:
    secret = new_secret()
    headers = request_headers([secret], "msg_1", int(time.time()), BODY, {})
    assert Webhook(secret).verify(BODY, headers)["type"] == "sale.created"
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == USER_AGENT


def test_a_wrong_secret_or_changed_body_fails() -> None:
    headers = request_headers([new_secret()], "msg_1", int(time.time()), BODY, {})
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY.replace(b"1}", b"2}"), headers)


def test_during_rotation_both_secrets_verify() -> None:
    new, old = new_secret(), new_secret()
    headers = request_headers([new, old], "msg_2", int(time.time()), BODY, {})
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(new).verify(BODY, headers)
    Webhook(old).verify(BODY, headers)


def test_timestamp_is_whole_seconds_at_send_time() -> None:
    now = int(time.time())
    headers = request_headers([new_secret()], "msg_3", now, BODY, {})
    assert headers["webhook-timestamp"] == str(now)
    assert headers["webhook-id"] == "msg_3"


def test_custom_headers_travel_but_cannot_replace_the_signature() -> None:
    custom = {"Authorization": "Bearer t", "webhook-signature": "forged", "User-Agent": "shop/2"}
    secret = new_secret()
    headers = request_headers([secret], "msg_4", int(time.time()), BODY, custom)
    assert headers["Authorization"] == "Bearer t"
    assert headers["webhook-signature"] != "forged"
    assert "user-agent" not in headers and headers["User-Agent"] == "shop/2"
    Webhook(secret).verify(BODY, headers)


def test_the_signature_is_the_reference_librarys_for_any_body_and_secrets() -> None:
    from datetime import UTC, datetime

    from webhooks.signing import signature

    secrets_ = [new_secret(), new_secret()]
    for body in (BODY, b"", '{"name":"caf\u00e9 \u2603"}'.encode(), b"x" * 10_000):
        stamp = 1_700_000_000 + len(body)
        expected = " ".join(
            Webhook(s).sign("msg_9", datetime.fromtimestamp(stamp, UTC), body.decode())
            for s in secrets_
        )
        assert signature(secrets_, "msg_9", stamp, body) == expected
