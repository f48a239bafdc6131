"""The platform's services as local uvicorn processes."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from deploy.local.infra import (
    REPO_ROOT,
    InfraError,
    kill,
    pid_alive,
    read_pid,
    run_async,
    spawn,
    tail,
    terminate,
    write_pid,
)
from fulfilkit.db_roles import bootstrap as bootstrap_roles
from fulfilkit.db_roles import service_dsn

VENV_PYTHON = REPO_ROOT / ".venv" / "bin" / "python"
WEBHOOK_ALLOWED_HOSTS = "127.0.0.1,localhost,::1"
# Who calls whom inside the platform: each caller has its own INTERNAL_TOKEN, and each
# service is given the digests of the callers it answers (INTERNAL_CALLERS).
INTERNAL_CALLERS_OF: dict[str, tuple[str, ...]] = {
    "gateway": (),
    "orders": ("gateway", "fulfilment"),
    "stock": ("gateway",),
    "fulfilment": ("gateway",),
    "webhooks": ("gateway",),
}
LOCAL_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class LocalService:
    name: str
    app: str
    default_port: int
    url_env: str | None = None


SERVICES: tuple[LocalService, ...] = (
    LocalService("gateway", "gateway.app:create_app", 8000),
    LocalService("orders", "orders.app:create_app", 8001, "ORDERS_URL"),
    LocalService("stock", "stock.app:create_app", 8002, "STOCK_URL"),
    LocalService("fulfilment", "fulfilment.app:create_app", 8003, "FULFILMENT_URL"),
    LocalService("webhooks", "webhooks.app:create_app", 8004, "WEBHOOKS_URL"),
)


def python_executable() -> str:
    return str(VENV_PYTHON) if VENV_PYTHON.exists() else sys.executable


def service_ports(gateway_port: int = 8000) -> dict[str, int]:
    """Ports gateway_port, gateway_port + 1, ... in the order of SERVICES."""
    return {spec.name: gateway_port + index for index, spec in enumerate(SERVICES)}


def free_ports(count: int) -> list[int]:
    """`count` TCP ports free on 127.0.0.1 right now (for tests that run their own platform)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def service_url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def platform_env(
    *,
    database_url: str,
    bootstrap_servers: str,
    internal_token: str,
    admin_token: str,
    ports: Mapping[str, int],
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment every service gets: `base` (default os.environ) plus the platform's.

    `internal_token` is the gateway's credential; the services answer it. ENVIRONMENT is
    development unless `base` says otherwise (the secrets here are strong either way).
    """
    env = dict(os.environ if base is None else base)
    env.setdefault("ENVIRONMENT", "development")
    env.pop("INTERNAL_TOKEN", None)
    env.update(
        DATABASE_URL=database_url,
        KAFKA_BOOTSTRAP_SERVERS=bootstrap_servers,
        ADMIN_TOKEN=admin_token,
        INTERNAL_CALLERS=json.dumps({"gateway": token_digest(internal_token)}),
        WEBHOOK_ALLOWED_HOSTS=WEBHOOK_ALLOWED_HOSTS,
    )
    env.update({s.url_env: service_url(ports[s.name]) for s in SERVICES if s.url_env})
    return env


OWNER_OF_SECRET = {"ADMIN_TOKEN": "gateway", "WEBHOOK_SECRET_KEYS": "webhooks"}


def service_env(
    name: str,
    env: Mapping[str, str],
    internal_tokens: Mapping[str, str],
    database_urls: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """`env` with what is this service's alone: its own credential (when it calls others), the
    digests of the callers it answers and its database role. Secrets one service uses go to
    that service only (`OWNER_OF_SECRET`)."""
    own = {key: value for key, value in env.items() if OWNER_OF_SECRET.get(key, name) == name}
    if database_urls is not None:
        own["DATABASE_URL"] = database_urls[name]
    own["INTERNAL_CALLERS"] = json.dumps(
        {caller: token_digest(internal_tokens[caller]) for caller in INTERNAL_CALLERS_OF[name]}
    )
    if name in internal_tokens:
        own["INTERNAL_TOKEN"] = internal_tokens[name]
    return own


def new_fernet_key() -> str:
    """A key in the form `WEBHOOK_SECRET_KEYS` takes (what `Fernet.generate_key()` makes)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def python_path(name: str, existing: str | None) -> str:
    """The service's own package dir, libs/ and the repo root, ahead of any PYTHONPATH."""
    parts = [str(REPO_ROOT / "services" / name), str(REPO_ROOT / "libs"), str(REPO_ROOT)]
    return os.pathsep.join(parts + ([existing] if existing else []))


class ServiceProcess:
    """One service under uvicorn: detached, logging to `<log_dir>/<name>.log`.

    A replica (`shared_port` set) is one of several processes of `service`, named
    `<service>-<n>`: it serves its own `port` and, with the others, `shared_port`
    (`deploy.local.replica`)."""

    def __init__(
        self,
        name: str,
        app: str,
        port: int,
        env: Mapping[str, str],
        log_dir: Path,
        *,
        pid_dir: Path | None = None,
        service: str | None = None,
        shared_port: int | None = None,
    ) -> None:
        self.name = name
        self.service = service or name
        self.app = app
        self.port = port
        self.shared_port = shared_port
        self.log_file = log_dir / f"{name}.log"
        self.pid_file = (pid_dir / f"{name}.pid") if pid_dir is not None else None
        self.env = {
            **env,
            "SERVICE_NAME": self.service,
            "SERVICE_PORT": str(port),
            "PYTHONPATH": python_path(self.service, env.get("PYTHONPATH")),
        }
        self.pid: int | None = None

    @property
    def url(self) -> str:
        return service_url(self.port)

    def command(self) -> list[str]:
        shared = [] if self.shared_port is None else ["--shared-port", str(self.shared_port)]
        return [
            python_executable(), "-m",
            "fulfilkit.serve" if self.shared_port is None else "deploy.local.replica",
            self.app, "--factory", "--host", "127.0.0.1", "--port", str(self.port),
            "--loop", "uvloop", "--http", "httptools", "--no-access-log", *shared,
        ]  # fmt: skip

    def _marker(self) -> str:
        return f"{self.app} --factory --host 127.0.0.1 --port {self.port} "

    def adopt(self) -> bool:
        """Take over a process started earlier from the pid file; True when one is alive."""
        if self.pid_file is not None and self.pid is None:
            self.pid = read_pid(self.pid_file, self._marker())
        return self.is_running()

    def is_running(self) -> bool:
        return self.pid is not None and pid_alive(self.pid)

    def start(self) -> None:
        if self.is_running():
            raise InfraError(f"{self.name} is already running (pid {self.pid})")
        self.pid = spawn(self.command(), self.log_file, env=self.env, cwd=REPO_ROOT).pid
        if self.pid_file is not None:
            write_pid(self.pid_file, self.pid)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL once `timeout` has passed."""
        if self.pid is not None:
            terminate([self.pid], timeout)
        self.forget()

    def kill(self) -> None:
        """SIGKILL at once, as a crash would."""
        if self.pid is not None:
            kill([self.pid])
        self.forget()

    def restart(self, timeout: float = 30.0) -> None:
        self.stop()
        self.start()
        self.wait_ready(timeout)

    def forget(self) -> None:
        """Drop the pid (and pid file) without signalling the process."""
        self.pid = None
        if self.pid_file is not None:
            self.pid_file.unlink(missing_ok=True)

    def is_ready(self) -> bool:
        try:
            with LOCAL_HTTP.open(f"{self.url}/ready", timeout=1.0) as response:
                return response.status == 200
        except (OSError, urllib.error.URLError):
            return False

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Poll GET /ready until it answers 200; raise with the log's tail otherwise."""
        deadline = time.monotonic() + timeout
        while not self.is_ready():
            if not self.is_running():
                raise InfraError(
                    f"{self.name} exited while starting; see {self.log_file}:\n{self._tail()}"
                )
            if time.monotonic() > deadline:
                raise InfraError(
                    f"{self.name} was not ready on {self.url}/ready within {timeout:.0f}s; "
                    f"see {self.log_file}:\n{self._tail()}"
                )
            time.sleep(0.1)

    def _tail(self) -> str:
        return tail(self.log_file)


class Platform:
    """All five services with one set of settings; a context manager that stops them on exit.

    With `replicas` above one, every service runs that many processes (`<service>-1`, ...):
    each serves a port of its own (`replica_ports`, free ones by default) and all of them the
    service's port in `ports`, which is the one the other services and the clients are given
    (`deploy.local.replica`). Iterating gives every process; `platform[name]` the first of a
    service, `replicas_of(name)` all of them.
    """

    def __init__(
        self,
        *,
        database_url: str,
        bootstrap_servers: str,
        log_dir: Path,
        gateway_port: int = 8000,
        internal_token: str | None = None,
        fulfilment_token: str | None = None,
        admin_token: str | None = None,
        database_passwords: Mapping[str, str] | None = None,
        webhook_secret_key: str | None = None,
        pid_dir: Path | None = None,
        extra_env: Mapping[str, str] | None = None,
        ports: Mapping[str, int] | None = None,
        replicas: int = 1,
        replica_ports: Mapping[str, Sequence[int]] | None = None,
    ) -> None:
        if replicas < 1:
            raise ValueError(f"replicas must be at least 1, not {replicas}")
        self.ports = dict(ports or service_ports(gateway_port))
        self.replicas = replicas
        # the gateway's credential; the services answer it
        self.internal_token = internal_token or secrets.token_urlsafe(32)
        self.internal_tokens = {
            "gateway": self.internal_token,
            "fulfilment": fulfilment_token or secrets.token_urlsafe(32),
        }
        self.admin_token = admin_token or secrets.token_urlsafe(32)
        # encrypts webhook signing secrets at rest; given to the webhooks service alone
        self.webhook_secret_key = webhook_secret_key or new_fernet_key()
        self.env = platform_env(
            database_url=database_url,
            bootstrap_servers=bootstrap_servers,
            internal_token=self.internal_token,
            admin_token=self.admin_token,
            ports=self.ports,
        )
        self.env.setdefault("WEBHOOK_SECRET_KEYS", self.webhook_secret_key)
        self.env.update(extra_env or {})
        # `database_url` is a superuser's: each service gets its own role (fulfilkit.db_roles)
        self.superuser_database_url = database_url
        self.database_passwords = {
            spec.name: (database_passwords or {}).get(spec.name) or secrets.token_urlsafe(32)
            for spec in SERVICES
        }
        self.database_urls = {
            name: service_dsn(database_url, name, password)
            for name, password in self.database_passwords.items()
        }
        if replicas == 1:
            self.processes = {
                spec.name: [
                    ServiceProcess(
                        spec.name,
                        spec.app,
                        self.ports[spec.name],
                        self.service_env(spec.name),
                        log_dir,
                        pid_dir=pid_dir,
                    )
                ]
                for spec in SERVICES
            }
        else:
            if replica_ports is None:
                spare = iter(free_ports(len(SERVICES) * replicas))
                replica_ports = {s.name: [next(spare) for _ in range(replicas)] for s in SERVICES}
            self.processes = {
                spec.name: [
                    ServiceProcess(
                        f"{spec.name}-{n}",
                        spec.app,
                        port,
                        self.service_env(spec.name),
                        log_dir,
                        pid_dir=pid_dir,
                        service=spec.name,
                        shared_port=self.ports[spec.name],
                    )
                    for n, port in enumerate(replica_ports[spec.name], start=1)
                ]
                for spec in SERVICES
            }
        self.services = {name: processes[0] for name, processes in self.processes.items()}

    def service_env(self, name: str) -> dict[str, str]:
        """The environment of service `name` (for another process of it)."""
        return service_env(name, self.env, self.internal_tokens, self.database_urls)

    @property
    def gateway_url(self) -> str:
        return service_url(self.ports["gateway"])

    def url(self, name: str) -> str:
        """Where service `name` answers (any of its replicas)."""
        return service_url(self.ports[name])

    def __getitem__(self, name: str) -> ServiceProcess:
        return self.services[name]

    def replicas_of(self, name: str) -> list[ServiceProcess]:
        return list(self.processes[name])

    def __iter__(self) -> Iterator[ServiceProcess]:
        return (process for processes in self.processes.values() for process in processes)

    def start(self, timeout: float = 60.0) -> list[str]:
        """Start the services not running yet and wait for all; returns the names started.

        When one does not become ready, those it started are stopped again and InfraError raised.
        """
        started = [service for service in self if not service.adopt()]
        run_async(lambda: bootstrap_roles(self.superuser_database_url, self.database_passwords))
        try:
            for service in started:
                service.start()
            self.wait_ready(timeout)
        except BaseException:
            terminate([service.pid for service in started if service.pid is not None])
            for service in started:
                service.forget()
            raise
        return [service.name for service in started]

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        for service in self:
            service.wait_ready(max(0.0, deadline - time.monotonic()))

    def stop(self, timeout: float = 10.0) -> list[str]:
        """Stop every service (in parallel); returns the names of those that were running."""
        running = [service for service in self if service.adopt()]
        terminate([service.pid for service in running if service.pid is not None], timeout)
        for service in self:
            service.forget()
        return [service.name for service in running]

    def __enter__(self) -> Platform:
        try:
            # every replica imports, migrates (one at a time) and starts its consumers
            self.start(timeout=60.0 * self.replicas)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
