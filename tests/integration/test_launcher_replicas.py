"""Several processes of one service on one machine (`Platform(replicas=N)`): they share the
service's port, the kernel spreads connections over them, and one that dies takes none of
the traffic with it: new connections go to the others."""

import urllib.request
from pathlib import Path

import pytest

from deploy.local.services import LOCAL_HTTP, ServiceProcess, free_ports, service_url
from tests.support import eventually

pytestmark = pytest.mark.integration

APP = "tests.integration.replica_app:create_app"


def answered_by(port: int) -> int:
    """The pid of the replica that answered a request on a new connection to `port`."""
    request = urllib.request.Request(f"{service_url(port)}/who", headers={"Connection": "close"})
    with LOCAL_HTTP.open(request, timeout=5) as response:
        return int(response.read())


def replicas(count: int, shared: int, log_dir: Path) -> list[ServiceProcess]:
    return [
        ServiceProcess(
            f"stand-in-{n}", APP, port, {}, log_dir, service="stand-in", shared_port=shared
        )
        for n, port in enumerate(free_ports(count), start=1)
    ]


async def test_replicas_share_the_port_and_a_dead_one_takes_no_traffic(tmp_path: Path) -> None:
    [shared] = free_ports(1)
    first, second = replicas(2, shared, tmp_path)
    try:
        for process in (first, second):
            process.start()
        for process in (first, second):
            process.wait_ready(30)
        # each also answers on its own port, so it can be asked for /ready alone
        assert answered_by(first.port) == first.pid
        assert answered_by(second.port) == second.pid

        # connections to the shared port reach both (the kernel hashes each new connection)
        seen = {answered_by(shared) for _ in range(200)}
        assert seen == {first.pid, second.pid}

        first.kill()
        # every new connection now reaches the survivor: none is refused or left hanging
        assert {answered_by(shared) for _ in range(100)} == {second.pid}

        # a replica started again joins once its application has started
        first.start()
        first.wait_ready(30)

        async def pids() -> set[int]:
            return {answered_by(shared) for _ in range(50)}

        await eventually(pids, lambda seen: seen == {first.pid, second.pid}, what="both again")
    finally:
        for process in (first, second):
            process.stop()
