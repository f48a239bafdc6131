"""Kafka, PostgreSQL and the five services in a state dir of their own, so that each can be
killed -9 and started again without touching anything else on the machine."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from deploy.local.infra import (
    PG_SETTINGS,
    InfraError,
    crash_postgres,
    kafka_pid,
    kill,
    restart_postgres,
    start_infrastructure,
    start_kafka_again,
    stop_infrastructure,
    wipe,
)
from deploy.local.services import SERVICES, Platform, free_ports

# Retries come back within seconds, so a 60 s receiver outage is caught up in well under a
# minute; the lease is short so that a killed webhooks process's deliveries go out again soon.
PLATFORM_SETTINGS: Mapping[str, str] = {
    "RATE_LIMIT_PER_SECOND": "100000",
    "RATE_LIMIT_BURST": "100000",
    "OUTBOX_POLL_INTERVAL_SECONDS": "0.5",
    "WEBHOOK_POLL_INTERVAL_SECONDS": "0.2",
    "WEBHOOK_RETRY_SCHEDULE_SECONDS": ",".join(["1", "2", "4"] + ["8"] * 20),
    "WEBHOOK_TIMEOUT_SECONDS": "5",
    "WEBHOOK_LEASE_SECONDS": "15",
    "UPSTREAM_TIMEOUT_SECONDS": "10",
    "ORDERS_TIMEOUT_SECONDS": "8",
}
KAFKA_START_TIMEOUT = 240.0
# A kill -9 of PostgreSQL loses commits whose WAL was not written yet when
# synchronous_commit is off (as the test suite's shared server runs): acknowledged writes
# would vanish. fsync and full page writes only matter when the machine itself crashes.
PG_CRASH_SAFE: Mapping[str, str] = {**PG_SETTINGS, "fsync": "off", "full_page_writes": "off"}


class ChaosStack:
    """Owns `state_dir`: wipes it, starts everything there, and can break each part."""

    def __init__(
        self,
        state_dir: Path,
        *,
        pg_settings: Mapping[str, str] = PG_CRASH_SAFE,
        kafka_port: int | None = None,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self.state_dir = state_dir.resolve()
        self.log_dir = self.state_dir / "logs"
        self.pg_settings = pg_settings
        self.kafka_port, self.controller_port = (
            (kafka_port, kafka_port + 1) if kafka_port else tuple(free_ports(2))
        )
        self.extra_env = {**PLATFORM_SETTINGS, **(extra_env or {})}
        self.bootstrap_servers = ""
        self.database_url = ""
        self.platform: Platform | None = None

    # whole stack

    def start(self) -> None:
        wipe(self.state_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.bootstrap_servers, self.database_url = start_infrastructure(
            self.state_dir,
            self.kafka_port,
            self.controller_port,
            self.log_dir,
            pg_settings=self.pg_settings,
        )
        ports = dict(zip([s.name for s in SERVICES], free_ports(len(SERVICES)), strict=True))
        self.platform = Platform(
            database_url=self.database_url,
            bootstrap_servers=self.bootstrap_servers,
            log_dir=self.log_dir,
            ports=ports,
            extra_env=self.extra_env,
        )
        self.platform.start(timeout=120)

    def stop(self) -> None:
        if self.platform is not None:
            self.platform.stop()
        stop_infrastructure(self.state_dir)

    @property
    def running(self) -> Platform:
        assert self.platform is not None, "start() first"
        return self.platform

    # Kafka

    def restart_kafka(self) -> None:
        start_kafka_again(self.state_dir / "kafka", timeout=KAFKA_START_TIMEOUT)

    def kill_kafka(self) -> None:
        pid = kafka_pid(self.state_dir / "kafka")
        if pid is None:
            raise InfraError("no Kafka broker to kill")
        kill([pid])

    # PostgreSQL

    def kill_postgres(self) -> None:
        """SIGKILL the postmaster and its backends, as a crash would."""
        crash_postgres(self.state_dir / "postgres")

    def restart_postgres(self) -> None:
        """Start it again (crash recovery first); the services must find it by themselves."""
        dsn = restart_postgres(self.state_dir / "postgres")
        if dsn != self.database_url:
            raise InfraError(f"PostgreSQL came back at {dsn}, not {self.database_url}")

    # services

    def kill_service(self, name: str) -> None:
        self.running[name].kill()

    def start_service(self, name: str, timeout: float = 120) -> None:
        service = self.running[name]
        service.start()
        service.wait_ready(timeout)
