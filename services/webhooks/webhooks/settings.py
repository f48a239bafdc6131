from pydantic import Field, field_validator, model_validator

from fulfilkit.settings import ServiceSettings
from webhooks.domain import parse_schedule
from webhooks.sealing import DEVELOPMENT_KEY, parse_keys

# With delivery processes, the service's own dispatcher takes this part of each in-flight cap.
OWN_SHARE_DIVISOR = 5


class WebhookSettings(ServiceSettings):
    """The webhooks service's settings; every field is read from the upper-case env var."""

    webhook_allowed_hosts: str = ""
    consumer_fetch_max_wait_ms: int = Field(default=25, ge=0)
    consumer_fetch_min_bytes: int = Field(default=1, ge=1)
    webhook_secret_keys: str = Field(default="", repr=False)
    webhook_secret_overlap_seconds: float = Field(default=86400, ge=0)
    webhook_timeout_seconds: float = Field(default=10, gt=0)
    webhook_max_in_flight_per_endpoint: int = Field(default=10, ge=1)
    webhook_max_in_flight: int = Field(default=256, ge=1)
    webhook_max_in_flight_per_tenant: int = Field(default=64, ge=1)
    # Processes that claim and send deliveries, started by the service beside its own (whose
    # dispatcher sends those its consumer hands over, and claims too). None by default: on a
    # quiet 2-core machine they sent a burst no faster, at more CPU a delivery (the claims).
    webhook_delivery_processes: int = Field(default=0, ge=0)
    webhook_max_endpoints_per_tenant: int = Field(default=50, ge=1)
    webhook_dns_timeout_seconds: float = Field(default=5, gt=0)
    webhook_dns_max_concurrent: int = Field(default=8, ge=1)
    webhook_dns_max_concurrent_per_tenant: int = Field(default=2, ge=1)
    webhook_batch_size: int = Field(default=100, ge=1)
    webhook_lease_seconds: float = Field(default=60, gt=0)
    webhook_retry_schedule_seconds: str = "5,30,120,600,1800,3600,7200,14400,28800"
    webhook_poll_interval_seconds: float = Field(default=0.5, gt=0)
    webhook_idle_wait_seconds: float = Field(default=5, gt=0)
    webhook_disable_after_failing_seconds: float = Field(default=432000, ge=0)
    webhook_shutdown_grace_seconds: float = Field(default=5, ge=0)
    webhook_retention_seconds: float = Field(default=30 * 86400, gt=0)
    webhook_prune_interval_seconds: float = Field(default=3600, gt=0)

    @field_validator("webhook_retry_schedule_seconds")
    @classmethod
    def _schedule_parses(cls, value: str) -> str:
        parse_schedule(value)
        return value

    @field_validator("webhook_secret_keys")
    @classmethod
    def _keys_parse(cls, value: str) -> str:
        parse_keys(value)
        return value

    @model_validator(mode="after")
    def _secret_keys_outside_development(self) -> "WebhookSettings":
        if self.environment == "development":
            return self
        keys = parse_keys(self.webhook_secret_keys)
        if not keys:
            raise ValueError("WEBHOOK_SECRET_KEYS must be set outside development")
        if DEVELOPMENT_KEY in keys:
            raise ValueError("WEBHOOK_SECRET_KEYS holds the public development key")
        return self

    @model_validator(mode="after")
    def _lease_outlives_a_request(self) -> "WebhookSettings":
        if self.webhook_lease_seconds <= self.webhook_timeout_seconds + 5:
            raise ValueError("WEBHOOK_LEASE_SECONDS must exceed WEBHOOK_TIMEOUT_SECONDS + 5")
        return self

    @model_validator(mode="after")
    def _caps_divide_among_dispatchers(self) -> "WebhookSettings":
        smallest = min(
            self.webhook_max_in_flight_per_endpoint,
            self.webhook_max_in_flight_per_tenant,
            self.webhook_max_in_flight,
        )
        if self.dispatchers > smallest:
            raise ValueError(
                "WEBHOOK_DELIVERY_PROCESSES + 1 must not exceed any WEBHOOK_MAX_IN_FLIGHT* cap:"
                " the service's dispatcher and each delivery process take a share of every cap"
            )
        return self

    @property
    def dispatchers(self) -> int:
        """The service's own dispatcher and those of its delivery processes."""
        return 1 + self.webhook_delivery_processes

    def dispatcher_share(self, *, own: bool) -> "WebhookSettings":
        """What one dispatcher may hold in flight, so that all of them together stay within
        each cap: the service's `own` a fifth of each cap (at least 1; it sends what its
        consumer hands over, a steady flow), each delivery process an equal part of the rest
        (what the division leaves over goes unused)."""
        processes = self.webhook_delivery_processes
        if processes == 0:
            return self
        caps = ("webhook_max_in_flight_per_endpoint", "webhook_max_in_flight_per_tenant",
                "webhook_max_in_flight")  # fmt: skip
        shares = {}
        for name in caps:
            cap = getattr(self, name)
            service_share = max(1, cap // OWN_SHARE_DIVISOR)
            shares[name] = service_share if own else (cap - service_share) // processes
        return self.model_copy(update=shares)

    @property
    def retry_schedule(self) -> tuple[float, ...]:
        return parse_schedule(self.webhook_retry_schedule_seconds)

    @property
    def secret_keys(self) -> list[str]:
        """The first encrypts, all decrypt; the public development key only in development."""
        return parse_keys(self.webhook_secret_keys) or [DEVELOPMENT_KEY]

    @property
    def allowed_hosts(self) -> frozenset[str]:
        entries = (h.strip().lower() for h in self.webhook_allowed_hosts.split(","))
        return frozenset(h for h in entries if h)
