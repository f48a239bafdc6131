"""Standard Webhooks signing: `whsec_` secrets and the `webhook-*` headers."""

import base64
import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache

from standardwebhooks.webhooks import Webhook

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
USER_AGENT = "Fulfil-Webhooks/1"


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


@lru_cache(maxsize=4096)
def _signer(secret: str) -> Webhook:
    return Webhook(secret)


def signature(secrets_: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<sig>` per secret, space-separated, as `webhook-signature` carries them."""
    when = datetime.fromtimestamp(timestamp, UTC)
    text = body.decode()
    return " ".join(_signer(s).sign(msg_id, when, text) for s in secrets_)


def request_headers(
    secrets_: Sequence[str],
    msg_id: str,
    timestamp: int,
    body: bytes,
    custom: Mapping[str, str],
) -> dict[str, str]:
    """Custom headers may replace the user agent, never the signature or content type."""
    custom_names = {name.lower() for name in custom}
    agent = {} if "user-agent" in custom_names else {"user-agent": USER_AGENT}
    return {
        **agent,
        **custom,
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secrets_, msg_id, timestamp, body),
    }
