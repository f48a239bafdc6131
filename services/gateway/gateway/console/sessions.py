"""Console sessions without I/O: ids and their hashes, CSRF tokens, the admin token's
fingerprint, expiry, and the same-origin check of a state-changing request."""

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from urllib.parse import urlsplit
from uuid import UUID

COOKIE = "fulfil_console"
SIGN_IN_COOKIE = "fulfil_console_sign_in"  # the sign-in form's double-submit token
PATH = "/console"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


@dataclass(frozen=True)
class NewSession:
    """A session as it is opened: the id exists only here and in the browser's cookie."""

    id: str
    id_hash: bytes
    csrf_token: str


@dataclass(frozen=True)
class Session:
    id_hash: bytes
    csrf_token: str
    kind: Literal["tenant", "admin"]
    key_id: UUID | None
    tenant_id: UUID | None
    scopes: frozenset[str]
    admin_fingerprint: bytes | None
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime

    @property
    def is_admin(self) -> bool:
        return self.kind == "admin"

    @property
    def actor(self) -> str:
        """Who the services record as acting: the key the session signed in with."""
        return f"key:{self.key_id}" if self.key_id is not None else "admin"


@dataclass(frozen=True)
class Lifetime:
    idle: timedelta
    absolute: timedelta


def new_session() -> NewSession:
    session_id = secrets.token_urlsafe(32)
    return NewSession(session_id, hash_id(session_id), secrets.token_urlsafe(32))


def hash_id(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode()).digest()


def admin_fingerprint(admin_token: str) -> bytes:
    """What a session keeps of the admin token: enough to see that it changed, never it."""
    return hashlib.sha256(b"fulfil-console-admin\x00" + admin_token.encode()).digest()


def same_token(sent: str | None, expected: str) -> bool:
    return sent is not None and hmac.compare_digest(sent.encode(), expected.encode())


def same_origin(headers: Mapping[str, str], host: str | None) -> bool:
    """A state-changing request comes from the console's own pages: `Sec-Fetch-Site` (sent by
    every current browser) says `same-origin`, and an `Origin`, when sent, names this host.
    A request with neither (an old browser, a script) relies on the CSRF token alone."""
    site = headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = headers.get("origin")
    if origin is None:
        return True
    if origin == "null" or host is None:
        return False
    return urlsplit(origin).netloc.lower() == host.lower()


def local_path(target: str | None, default: str) -> str:
    """A console path to go back to after a form; anything else (another site) is refused."""
    if target and target.startswith(PATH + "/") and not target.startswith("//"):
        if "\\" not in target and "\r" not in target and "\n" not in target:
            return target
    return default
