"""Receiving the platform's webhooks: check the signature, refuse stale or replayed-late
deliveries, and parse the body into the typed event.

The platform signs each delivery the Standard Webhooks way: `webhook-id`,
`webhook-timestamp` (Unix seconds) and `webhook-signature` (`v1,<base64 HMAC-SHA256 of
"<id>.<timestamp>.<body>">`, several separated by spaces while a rotated secret overlaps),
keyed by the endpoint's `whsec_` secret.

    verifier = WebhookVerifier(os.environ["FULFIL_WEBHOOK_SECRET"])
    event = verifier.verify(request_body_bytes, request_headers)   # raises InvalidWebhook
    if isinstance(event, events.SaleStatusChangedEvent):
        print(event.data.sale_id, event.data.status)

Delivery is at least once: drop repeats by `webhook-id` (`verifier.webhook_id(headers)`).
"""

from __future__ import annotations

import base64
import hmac
import json
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from standardwebhooks.webhooks import Webhook

from fulfil_client import events
from fulfil_client.errors import FulfilError

DEFAULT_TOLERANCE_SECONDS = 300.0


class InvalidWebhook(FulfilError):
    """The request is not a genuine, fresh delivery: answer it 400 (or 401) and drop it."""


def parse_event(body: bytes | str | Mapping[str, Any]) -> events.WebhookEvent:
    """The typed event for a webhook body (already verified): a model of
    `fulfil_client.events` by `type`, or `WebhookEvent` for a type or data version this
    client does not know."""
    document = json.loads(body) if isinstance(body, (bytes, str)) else dict(body)
    if not isinstance(document, dict):
        raise InvalidWebhook("The body is not a JSON object.")
    known = events.EVENT_TYPES.get(str(document.get("type")))
    try:
        if known is not None and str(document.get("dataversion", "1")) == known[1]:
            return known[0].model_validate(document)
        return events.WebhookEvent.model_validate(document)
    except ValidationError as exc:
        raise InvalidWebhook(f"The body is not a {document.get('type')} event: {exc}") from exc


class WebhookVerifier:
    """Checks deliveries signed with `secret` (or any of several secrets, while rotating
    one on the receiving side). `tolerance_seconds` bounds how far `webhook-timestamp` may
    be from now, either way, which refuses a captured request sent again later."""

    def __init__(
        self,
        secret: str | list[str],
        *,
        tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        secrets = [secret] if isinstance(secret, str) else list(secret)
        if not secrets or not all(secrets):
            raise ValueError("A webhook secret may not be empty.")
        self._signers = [Webhook(s) for s in secrets]
        self.tolerance_seconds = tolerance_seconds
        self._clock = clock

    def __repr__(self) -> str:  # never a secret
        return f"WebhookVerifier(secrets={len(self._signers)}, tolerance={self.tolerance_seconds})"

    @staticmethod
    def webhook_id(headers: Mapping[str, str]) -> str | None:
        return {k.lower(): v for k, v in headers.items()}.get("webhook-id")

    def check(self, body: bytes | str, headers: Mapping[str, str]) -> None:
        """Raises `InvalidWebhook` unless the signature matches and the timestamp is
        fresh."""
        lowered = {k.lower(): v for k, v in headers.items()}
        webhook_id = lowered.get("webhook-id")
        stamp = lowered.get("webhook-timestamp")
        signatures = lowered.get("webhook-signature")
        if not (webhook_id and stamp and signatures):
            raise InvalidWebhook(
                "Missing webhook-id, webhook-timestamp or webhook-signature header."
            )
        try:
            sent = int(stamp)
        except ValueError:
            raise InvalidWebhook("webhook-timestamp is not Unix seconds.") from None
        skew = self._clock() - sent
        if skew > self.tolerance_seconds:
            raise InvalidWebhook(f"The delivery is {int(skew)} s old: too old.")
        if -skew > self.tolerance_seconds:
            raise InvalidWebhook(f"The delivery is {int(-skew)} s in the future: too new.")
        text = body if isinstance(body, str) else body.decode("utf-8", errors="strict")
        when = datetime.fromtimestamp(sent, tz=UTC)
        offered = []
        for part in signatures.split():
            version, _, value = part.partition(",")
            if version == "v1" and value:
                try:
                    offered.append(base64.b64decode(value, validate=True))
                except ValueError:
                    continue
        for signer in self._signers:
            expected = base64.b64decode(signer.sign(webhook_id, when, text).split(",", 1)[1])
            if any(hmac.compare_digest(expected, candidate) for candidate in offered):
                return
        raise InvalidWebhook("No signature matches the secret.")

    def verify(self, body: bytes | str, headers: Mapping[str, str]) -> events.WebhookEvent:
        """Checks the delivery, then parses it into its typed event."""
        self.check(body, headers)
        try:
            return parse_event(body)
        except json.JSONDecodeError as exc:
            raise InvalidWebhook("The body is not JSON.") from exc


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes | str) -> dict[str, str]:
    """The headers the platform would send with `body`: for testing a receiver."""
    text = body if isinstance(body, str) else body.decode()
    signature = Webhook(secret).sign(webhook_id, datetime.fromtimestamp(timestamp, tz=UTC), text)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }
