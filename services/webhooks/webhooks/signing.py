"""Standard Webhooks signing: `whsec_` secrets and the `webhook-*` headers."""

import base64
import hmac
import secrets
from collections.abc import Mapping, Sequence
from functools import lru_cache

from standardwebhooks.webhooks import Webhook

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
USER_AGENT = "Fulfil-Webhooks/1"


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


@lru_cache(maxsize=4096)
def _key(secret: str) -> bytes:
    """The HMAC key of a `whsec_` secret, decoded as the Standard Webhooks library decodes it
    (its constructor refuses an empty one)."""
    return Webhook(secret)._whsecret


def signature(secrets_: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<sig>` per secret, space-separated, as `webhook-signature` carries them: HMAC-SHA256
    of `<msg_id>.<timestamp>.<body>`, what `standardwebhooks.Webhook.sign` computes (tested
    against it), in one call on the body's bytes instead of its text."""
    signed = b"%s.%d.%s" % (msg_id.encode(), timestamp, body)
    return " ".join(
        "v1," + base64.b64encode(hmac.digest(_key(s), signed, "sha256")).decode() for s in secrets_
    )


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
