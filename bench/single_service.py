"""Runs one service alone on the Kafka and PostgreSQL from the environment, for benchmarks
that drive it directly (with the internal token) instead of through the gateway."""

import os
import secrets
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from deploy.local.services import SERVICES, ServiceProcess, free_ports, platform_env


@dataclass(frozen=True)
class Running:
    url: str
    token: str
    bootstrap: str
    pid: int | None = None


def _stop_on_sigterm(*_: object) -> None:
    raise SystemExit(128 + signal.SIGTERM)


@dataclass(frozen=True)
class Setting:
    """What a benchmark's service processes share: a log directory, a port per service, the
    environment, and the internal token and Kafka address it gives them."""

    log_dir: Path
    ports: dict[str, int]
    env: dict[str, str]
    token: str
    bootstrap: str

    def app(self, name: str) -> str:
        return next(s.app for s in SERVICES if s.name == name)


def setting() -> Setting:
    """A fresh setting on the Kafka and PostgreSQL of the environment; SIGTERM exits, so
    that a caller's `finally` stops what it started."""
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    ports = dict(zip([s.name for s in SERVICES], free_ports(len(SERVICES)), strict=True))
    token = secrets.token_urlsafe(32)
    bootstrap = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    env = platform_env(
        database_url=os.environ["DATABASE_URL"],
        bootstrap_servers=bootstrap,
        internal_token=token,
        admin_token=secrets.token_urlsafe(32),
        ports=ports,
    )
    env["LOG_LEVEL"] = "WARNING"
    log_dir = Path(tempfile.mkdtemp(prefix="bench-logs-"))
    return Setting(log_dir, ports, env, token, bootstrap)


@contextmanager
def single_service(name: str) -> Iterator[Running]:
    at = setting()
    log_dir, ports, env, token, bootstrap = at.log_dir, at.ports, at.env, at.token, at.bootstrap
    app = at.app(name)
    service = ServiceProcess(name, app, ports[name], env, log_dir)
    try:
        service.start()
        service.wait_ready(60)
        yield Running(service.url, token, bootstrap, service.pid)
    finally:
        service.stop()
        print(f"service log: {service.log_file}")
