"""python -m deploy.local up | down | status | infra -- CMD ...

up      Kafka, PostgreSQL and the five services in STATE_DIR (default .local); prints the
        gateway URL, the docs URL, the admin token and a demo tenant's API key.
down    stops everything `up` started: services, then Kafka, then PostgreSQL.
status  shows what is running.
infra   runs CMD with KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL pointing at a fresh Kafka and
        PostgreSQL in TEST_STATE_DIR (default .local/test), stopped again when CMD ends.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from deploy.local.infra import (
    DEFAULT_STATE_DIR,
    InfraError,
    infrastructure_for_tests,
    kafka_pid,
    postgres_dsn,
    postgres_pid,
    start_infrastructure,
    stop_infrastructure,
    terminate,
)
from deploy.local.services import (
    LOCAL_HTTP,
    SERVICES,
    Platform,
    ServiceProcess,
    new_fernet_key,
    service_ports,
)


@dataclass(frozen=True)
class Settings:
    state_dir: Path
    gateway_port: int
    kafka_port: int
    controller_port: int

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def run_dir(self) -> Path:
        return self.state_dir / "run"

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"


def settings_from_env(env: Mapping[str, str] = os.environ) -> Settings:
    kafka_port = int(env.get("KAFKA_PORT", "9092"))
    return Settings(
        state_dir=Path(env.get("STATE_DIR") or DEFAULT_STATE_DIR).resolve(),
        gateway_port=int(env.get("GATEWAY_PORT", "8000")),
        kafka_port=kafka_port,
        controller_port=int(env.get("KAFKA_CONTROLLER_PORT", str(kafka_port + 1))),
    )


def stored_secret(
    path: Path,
    given: str | None,
    new: Callable[[], str] = lambda: secrets.token_urlsafe(32),
) -> str:
    """`given` when set; else the value stored at `path`, created by `new` on first use."""
    if given:
        return given
    if path.is_file():
        return path.read_text().strip()
    return store_secret(path, new())


def store_secret(path: Path, value: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(f"{value}\n")
    return value


# up


def recorded_gateway_port(settings: Settings) -> int:
    try:
        return int((settings.run_dir / "gateway_port").read_text())
    except (OSError, ValueError):
        return settings.gateway_port


def make_platform(settings: Settings, database_url: str) -> Platform:
    return Platform(
        database_url=database_url,
        bootstrap_servers=settings.bootstrap_servers,
        log_dir=settings.log_dir,
        gateway_port=settings.gateway_port,
        internal_token=stored_secret(
            settings.state_dir / "internal_token", os.environ.get("INTERNAL_TOKEN")
        ),
        fulfilment_token=stored_secret(settings.state_dir / "fulfilment_internal_token", None),
        database_passwords={
            spec.name: stored_secret(settings.state_dir / f"db_password_{spec.name}", None)
            for spec in SERVICES
        },
        admin_token=stored_secret(
            settings.state_dir / "admin_token", os.environ.get("ADMIN_TOKEN")
        ),
        webhook_secret_key=stored_secret(
            settings.state_dir / "webhook_secret_key",
            os.environ.get("WEBHOOK_SECRET_KEYS"),
            new_fernet_key,
        ),
        pid_dir=settings.run_dir,
    )


def create_tenant(gateway_url: str, admin_token: str, name: str) -> str:
    request = urllib.request.Request(
        f"{gateway_url}/api/v1/admin/tenants",
        data=json.dumps({"name": name}).encode(),
        headers={"Authorization": f"Bearer {admin_token}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with LOCAL_HTTP.open(request, timeout=15) as response:
            return json.load(response)["api_key"]
    except urllib.error.HTTPError as error:
        body = error.read()[:500].decode(errors="replace")
        raise InfraError(f"creating tenant {name!r} failed: HTTP {error.code}: {body}") from error


def demo_api_key(settings: Settings, platform: Platform) -> str:
    path = settings.state_dir / "demo_api_key"
    if path.is_file():
        return path.read_text().strip()
    return store_secret(path, create_tenant(platform.gateway_url, platform.admin_token, "demo"))


def write_env_file(settings: Settings, platform: Platform) -> Path:
    path = settings.state_dir / "platform.env"
    keys = ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "ADMIN_TOKEN")
    lines = [f"export {key}='{platform.env[key]}'" for key in keys]
    lines.append(f"export INTERNAL_TOKEN='{platform.internal_token}'")  # the gateway's
    lines.append(f"export GATEWAY_URL='{platform.gateway_url}'")
    store_secret(path, "\n".join(lines))
    return path


def up(settings: Settings) -> int:
    running_port = recorded_gateway_port(settings)
    if running_port != settings.gateway_port and any_service_running(settings):
        raise InfraError(
            f"the platform already runs with its gateway on port {running_port}; "
            "run `python -m deploy.local down` first to move it"
        )
    print(f"Starting Kafka and PostgreSQL (logs in {settings.log_dir}) ...", flush=True)
    bootstrap, dsn = start_infrastructure(
        settings.state_dir, settings.kafka_port, settings.controller_port, settings.log_dir
    )
    print("Starting the services ...", flush=True)
    platform = make_platform(settings, dsn)
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    (settings.run_dir / "gateway_port").write_text(f"{settings.gateway_port}\n")
    try:
        platform.start(timeout=60.0)
    except InfraError as error:
        hint = "Kafka and PostgreSQL keep running; `python -m deploy.local down` stops them."
        raise InfraError(f"{error}\n{hint}") from error
    api_key = demo_api_key(settings, platform)
    env_file = write_env_file(settings, platform)
    print_summary(settings, platform, api_key, env_file, bootstrap, dsn)
    return 0


def print_summary(
    settings: Settings, platform: Platform, api_key: str, env_file: Path, bootstrap: str, dsn: str
) -> None:
    print(
        "\nThe platform is up.\n"
        f"  Gateway:       {platform.gateway_url}\n"
        f"  API docs:      {platform.gateway_url}/docs\n"
        f"  Console:       {platform.gateway_url}/console  (sign in with the key or the token)\n"
        f"  Event docs:    {platform.gateway_url}/asyncapi.json\n"
        f"  Admin token:   {platform.admin_token}\n"
        f"  Demo API key:  {api_key}\n"
        f"  Logs:          {settings.log_dir}\n"
        f"  Kafka:         {bootstrap}\n"
        f"  PostgreSQL:    {dsn}\n"
        f"  Shell env:     source {env_file}\n"
        "Stop it with `python -m deploy.local down`."
    )


# down and status


def recorded_services(settings: Settings) -> list[ServiceProcess]:
    ports = service_ports(recorded_gateway_port(settings))
    return [
        ServiceProcess(
            spec.name, spec.app, ports[spec.name], {}, settings.log_dir, pid_dir=settings.run_dir
        )
        for spec in SERVICES
    ]


def any_service_running(settings: Settings) -> bool:
    return any(service.adopt() for service in recorded_services(settings))


def down(settings: Settings) -> int:
    services = [service for service in recorded_services(settings) if service.adopt()]
    terminate([service.pid for service in services if service.pid is not None])
    for service in services:
        service.forget()
    stopped = [service.name for service in services] + stop_infrastructure(settings.state_dir)
    (settings.run_dir / "gateway_port").unlink(missing_ok=True)
    print(f"Stopped: {', '.join(stopped)}." if stopped else "Nothing was running.")
    return 0


def status(settings: Settings) -> int:
    rows = [
        ("kafka", kafka_pid(settings.state_dir / "kafka"), settings.bootstrap_servers),
        (
            "postgres",
            postgres_pid(settings.state_dir / "postgres"),
            postgres_dsn(settings.state_dir / "postgres"),
        ),
    ]
    for service in recorded_services(settings):
        service.adopt()
        rows.append(
            (service.name, service.pid, service.url + (" (ready)" if service.is_ready() else ""))
        )
    for name, pid, where in rows:
        state = f"running  pid {pid:<8} {where}" if pid else "stopped"
        print(f"{name:<11} {state}")
    return 0 if all(pid for _, pid, _ in rows) else 1


# infra


@dataclass
class Child:
    process: subprocess.Popen[bytes] | None = None
    stopping: bool = False


def terminal_sent_it() -> bool:
    """Whether our process group has the terminal, so Ctrl-C already reached the child too."""
    try:
        return os.tcgetpgrp(sys.stdin.fileno()) == os.getpgrp()
    except OSError:
        return False


@contextmanager
def forwarding_signals(child: Child) -> Iterator[None]:
    def handle(signum: int, frame: FrameType | None) -> None:
        process = child.process
        if child.stopping:
            return
        if process is None or process.poll() is not None:
            child.stopping = True
            raise KeyboardInterrupt
        if not (signum == signal.SIGINT and terminal_sent_it()):
            process.send_signal(signum)

    previous = {
        sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    }
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_child(command: list[str], env: Mapping[str, str], child: Child) -> int:
    try:
        child.process = subprocess.Popen(command, env=dict(env))
    except OSError as error:
        print(f"cannot run {command[0]}: {error}", file=sys.stderr)
        return 127
    code = child.process.wait()
    child.stopping = True
    return 128 - code if code < 0 else code


def infra(command: list[str]) -> int:
    child = Child()
    with forwarding_signals(child):
        try:
            with infrastructure_for_tests() as (bootstrap, dsn):
                env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "DATABASE_URL": dsn}
                return run_child(command, env, child)
        except KeyboardInterrupt:
            return 130


# main


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="python -m deploy.local", description=__doc__.split("\n\n")[0]
    )
    commands = root.add_subparsers(dest="action", required=True)
    commands.add_parser("up", help="start Kafka, PostgreSQL and every service")
    commands.add_parser("down", help="stop everything `up` started")
    commands.add_parser("status", help="show what is running")
    run = commands.add_parser("infra", help="run CMD against a fresh Kafka and PostgreSQL")
    run.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD [ARGS...]")
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.action == "infra":
            command = args.command[1:] if args.command[:1] == ["--"] else args.command
            if not command:
                parser().error("infra needs a command: python -m deploy.local infra -- CMD ...")
            return infra(command)
        settings = settings_from_env()
        return {"up": up, "down": down, "status": status}[args.action](settings)
    except InfraError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
