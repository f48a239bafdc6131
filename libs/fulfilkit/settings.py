from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Settings every service reads from the environment; each service extends them."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore")

    environment: str = "development"

    database_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    internal_token: str = Field(default="dev-internal-token", min_length=8)
    kafka_partitions: int = Field(default=8, ge=1)
    db_pool_min_size: int = Field(default=2, ge=1)
    db_pool_max_size: int = Field(default=20, ge=1)
    outbox_batch_size: int = Field(default=500, ge=1)
    outbox_poll_interval_seconds: float = Field(default=1.0, gt=0)
    outbox_linger_ms: float = Field(default=0, ge=0, le=1000)
    consumer_max_records: int = Field(default=500, ge=1)
    consumer_max_attempts: int = Field(default=3, ge=1)
    consumer_poll_timeout_ms: int = Field(default=5, ge=1)
    consumer_commit_interval_seconds: float = Field(default=0.2, ge=0)
    consumer_fetch_max_wait_ms: int = Field(default=500, ge=0)
    consumer_fetch_min_bytes: int = Field(default=1, ge=1)
    inbox_retention_seconds: float = Field(default=30 * 86400, gt=0)
    inbox_prune_interval_seconds: float = Field(default=3600, gt=0)
    log_level: str = "INFO"
    # How long a request or loop waits for a database connection before it answers 503
    db_acquire_timeout_seconds: float = Field(default=10.0, gt=0)
    # A failed background loop is started again after this delay, doubled up to the maximum
    loop_restart_first_seconds: float = Field(default=0.5, gt=0)
    loop_restart_max_seconds: float = Field(default=5.0, gt=0)
    # The largest request the producer sends; at most the broker's `message.max.bytes`
    kafka_max_request_size: int = Field(default=1048576, ge=1024)
    # An outbox row Kafka refuses this many times (for a reason other than an outage) is parked
    outbox_park_after_failures: int = Field(default=5, ge=1)

    @model_validator(mode="after")
    def _no_default_secrets_in_production(self) -> "ServiceSettings":
        if self.environment != "development" and self.internal_token == "dev-internal-token":
            raise ValueError("INTERNAL_TOKEN must be set outside development")
        return self
