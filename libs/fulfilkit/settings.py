import hashlib
import hmac
import re
from functools import cached_property
from typing import ClassVar

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from fulfilkit.kafka_security import KafkaSecurity, SaslMechanism, SecurityProtocol
from fulfilkit.logs import LogFormat

DEVELOPMENT = "development"
MIN_SECRET_LENGTH = 32
# Values published in docs, examples and earlier defaults: never a real secret.
WELL_KNOWN_SECRETS = frozenset(
    {
        "dev-admin-token",
        "dev-internal-token",
        "test-admin-token",
        "test-internal-token",
        "changeme",
        "change-me",
        "secret",
        "password",
        "admin",
        "token",
    }
)
# Every service that calls another one has its own credential (its INTERNAL_TOKEN).
INTERNAL_CALLER_NAMES = frozenset({"gateway", "fulfilment"})
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def weak_secret_reason(value: str) -> str | None:
    """Why `value` cannot be a production secret, or None when it can."""
    if not value:
        return "is missing"
    if len(value) < MIN_SECRET_LENGTH:
        return f"is shorter than {MIN_SECRET_LENGTH} characters"
    if value.strip().lower() in WELL_KNOWN_SECRETS or len(set(value)) < 8:
        return "is a well-known or trivially guessable value"
    return None


def _each(digests: str | list[str]) -> list[str]:
    return [digests] if isinstance(digests, str) else digests


def token_digest(token: str) -> str:
    """The SHA-256 (hex) that a called service holds instead of the caller's token."""
    return hashlib.sha256(token.encode("latin-1", "replace")).hexdigest()


class ServiceSettings(BaseSettings):
    """Settings every service reads from the environment; each service extends them."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore")

    # Names of the fields holding secrets: outside development each must be strong.
    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ()
    # The callers this service answers (see `fulfilkit.http.internal`); their digests
    # must be in INTERNAL_CALLERS outside development.
    ACCEPTED_CALLERS: ClassVar[frozenset[str]] = frozenset({"gateway"})

    environment: str = "production"

    database_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: SaslMechanism = "SCRAM-SHA-512"
    kafka_sasl_username: str = ""
    kafka_sasl_password: str = ""
    kafka_ssl_cafile: str = ""
    kafka_ssl_certfile: str = ""
    kafka_ssl_keyfile: str = ""
    kafka_ssl_check_hostname: bool = True
    # {"gateway": "<sha256 hex of the gateway's INTERNAL_TOKEN>", ...}, as JSON; a list of
    # digests for one caller accepts each (while its token is being rotated)
    internal_callers: dict[str, str | list[str]] = Field(default_factory=dict)
    kafka_partitions: int = Field(default=8, ge=1)
    # Topics the platform creates (`fulfilkit.kafka.ensure_topics`); 1 and 1 suit the local
    # single broker, a production cluster takes 3 and 2 (docs/operations.md)
    kafka_replication_factor: int = Field(default=1, ge=1)
    kafka_min_insync_replicas: int = Field(default=1, ge=1)
    # How long topics keep records (-1: for ever); dead-letter topics (`*.dlq`) their own
    kafka_retention_ms: int = Field(default=7 * 86_400_000, ge=-1)
    kafka_dlq_retention_ms: int = Field(default=30 * 86_400_000, ge=-1)
    db_pool_min_size: int = Field(default=2, ge=1)
    db_pool_max_size: int = Field(default=20, ge=1)
    outbox_batch_size: int = Field(default=500, ge=1)
    outbox_poll_interval_seconds: float = Field(default=1.0, gt=0)
    # An idle relay looks at its outbox this often even without a notification
    outbox_idle_check_seconds: float = Field(default=5.0, gt=0)
    outbox_linger_ms: float = Field(default=0, ge=0, le=1000)
    consumer_max_records: int = Field(default=500, ge=1)
    consumer_max_attempts: int = Field(default=3, ge=1)
    consumer_poll_timeout_ms: int = Field(default=1000, ge=1)
    consumer_commit_interval_seconds: float = Field(default=0.2, ge=0)
    consumer_fetch_max_wait_ms: int = Field(default=500, ge=0)
    consumer_fetch_min_bytes: int = Field(default=1, ge=1)
    inbox_retention_seconds: float = Field(default=30 * 86400, gt=0)
    inbox_prune_interval_seconds: float = Field(default=3600, gt=0)
    idempotency_ttl_hours: float = Field(default=24, gt=0)
    log_level: str = "INFO"
    # `text` (for people) or `json` (one object a line, for a log collector)
    log_format: LogFormat = "text"
    # Apply the schema's migrations at start; when false, `python -m <service> migrate` does,
    # and the service refuses to start until its schema is up to date
    migrate_on_start: bool = True
    # How long a request or loop waits for a database connection before it answers 503
    db_acquire_timeout_seconds: float = Field(default=10.0, gt=0)
    # A failed background loop is started again after this delay, doubled up to the maximum
    loop_restart_first_seconds: float = Field(default=0.5, gt=0)
    loop_restart_max_seconds: float = Field(default=5.0, gt=0)
    # The largest request the producer sends; at most the broker's `message.max.bytes`
    kafka_max_request_size: int = Field(default=1048576, ge=1024)
    # An outbox row Kafka refuses this many times (for a reason other than an outage) is parked
    outbox_park_after_failures: int = Field(default=5, ge=1)
    # `/metrics` reads its gauges (database, Kafka offsets) at most this often, each read
    # bounded by the timeout: a scrape never holds up the service, and answers when they are down
    metrics_cache_seconds: float = Field(default=5.0, ge=0)
    metrics_timeout_seconds: float = Field(default=1.0, gt=0)
    # Crash points a test arms, comma-separated (`fulfilkit.faults`); development only
    fault_points: str = ""

    @property
    def is_development(self) -> bool:
        return self.environment.strip().lower() == DEVELOPMENT

    @field_validator("log_format", mode="before")
    @classmethod
    def _log_format_any_case(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("internal_callers")
    @classmethod
    def _callers_are_digests(cls, value: dict[str, str | list[str]]) -> dict[str, str | list[str]]:
        unknown = set(value) - INTERNAL_CALLER_NAMES
        if unknown:
            raise ValueError(
                f"unknown callers {sorted(unknown)}; known: {sorted(INTERNAL_CALLER_NAMES)}"
            )
        normalised: dict[str, str | list[str]] = {
            name: digests.strip().lower()
            if isinstance(digests, str)
            else [digest.strip().lower() for digest in digests]
            for name, digests in value.items()
        }
        bad = sorted(
            name
            for name, digests in normalised.items()
            if not digests or not all(_SHA256_HEX.fullmatch(d) for d in _each(digests))
        )
        if bad:
            raise ValueError(f"the digests of {bad} are not SHA-256 in hex (64 characters)")
        return normalised

    @field_validator("kafka_retention_ms", "kafka_dlq_retention_ms")
    @classmethod
    def _retention(cls, value: int) -> int:
        if value == 0:
            raise ValueError("a retention of 0 ms would delete every record at once; -1 keeps them")
        return value

    @model_validator(mode="after")
    def _replicas_consistent(self) -> "ServiceSettings":
        if self.kafka_min_insync_replicas > self.kafka_replication_factor:
            raise ValueError(
                f"KAFKA_MIN_INSYNC_REPLICAS ({self.kafka_min_insync_replicas}) is larger than"
                f" KAFKA_REPLICATION_FACTOR ({self.kafka_replication_factor}): no write could"
                " ever be acknowledged"
            )
        return self

    @cached_property
    def kafka_security(self) -> KafkaSecurity:
        return KafkaSecurity(
            protocol=self.kafka_security_protocol,
            sasl_mechanism=self.kafka_sasl_mechanism,
            sasl_username=self.kafka_sasl_username,
            sasl_password=self.kafka_sasl_password,
            ssl_cafile=self.kafka_ssl_cafile,
            ssl_certfile=self.kafka_ssl_certfile,
            ssl_keyfile=self.kafka_ssl_keyfile,
            ssl_check_hostname=self.kafka_ssl_check_hostname,
        )

    @model_validator(mode="after")
    def _kafka_security_consistent(self) -> "ServiceSettings":
        try:
            self.kafka_security  # noqa: B018 (validates)
        except ValidationError as exc:
            raise ValueError(
                "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
            ) from None
        return self

    @model_validator(mode="after")
    def _fail_closed_outside_development(self) -> "ServiceSettings":
        if self.is_development:
            return self
        problems = []
        if self.fault_points.strip():
            problems.append("FAULT_POINTS arms crash points, which only tests may do")
        secrets = list(self.SECRET_FIELDS)
        if self.kafka_security.uses_sasl:
            secrets.append("kafka_sasl_password")
        security = self.kafka_security
        if security.protocol == "SASL_PLAINTEXT" and security.sasl_mechanism == "PLAIN":
            problems.append("KAFKA_SASL_MECHANISM=PLAIN sends the password in clear without TLS")
        for name in secrets:
            reason = weak_secret_reason(getattr(self, name))
            if reason is not None:
                problems.append(f"{name.upper()} {reason}")
        missing = sorted(self.ACCEPTED_CALLERS - set(self.internal_callers))
        if missing:
            problems.append(f"INTERNAL_CALLERS lacks the digests of {missing}")
        if problems:
            raise ValueError(
                "; ".join(problems)
                + f" (ENVIRONMENT={self.environment!r}; only ENVIRONMENT=development allows this)"
            )
        return self

    @cached_property
    def _caller_by_digest(self) -> dict[bytes, str]:
        return {
            bytes.fromhex(digest): name
            for name, digests in self.internal_callers.items()
            for digest in _each(digests)
        }

    def internal_caller(self, token: str | None) -> str | None:
        """The name of the service whose INTERNAL_TOKEN `token` is, or None."""
        if not token:
            return None
        presented = hashlib.sha256(token.encode("latin-1", "replace")).digest()
        found = None
        for digest, name in self._caller_by_digest.items():  # compare with every one
            if hmac.compare_digest(presented, digest):
                found = name
        return found
