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


@contextmanager
def single_service(name: str) -> Iterator[Running]:
    signal.signal(signal.SIGTERM, _stop_on_sigterm)  # so that `finally` stops the service
    log_dir = Path(tempfile.mkdtemp(prefix="bench-logs-"))
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
    app = next(s.app for s in SERVICES if s.name == name)
    service = ServiceProcess(name, app, ports[name], env, log_dir)
    try:
        service.start()
        service.wait_ready(60)
        yield Running(service.url, token, bootstrap, service.pid)
    finally:
        service.stop()
        print(f"service log: {service.log_file}")
