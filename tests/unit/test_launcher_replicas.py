"""The launcher's plan for several processes per service (`Platform(replicas=N)`), and that
one process per service is run exactly as before."""

from pathlib import Path

import pytest

from deploy.local.services import SERVICES, Platform, ServiceProcess, service_url

DSN = "postgresql://postgres:@/postgres?host=/tmp/nowhere"
PORTS = {spec.name: 18600 + n for n, spec in enumerate(SERVICES)}


def platform(replicas: int) -> Platform:
    return Platform(
        database_url=DSN,
        bootstrap_servers="127.0.0.1:1",
        log_dir=Path("/tmp/logs"),
        ports=PORTS,
        replicas=replicas,
        replica_ports={
            s.name: [18700 + 10 * n + r for r in range(replicas)] for n, s in enumerate(SERVICES)
        },
    )


def test_one_process_per_service_runs_as_before() -> None:
    one = platform(1)
    assert [p.name for p in one] == [s.name for s in SERVICES]
    for spec in SERVICES:
        process = one[spec.name]
        assert process.port == PORTS[spec.name]
        assert process.shared_port is None
        assert process.command()[1:4] == ["-m", "fulfilkit.serve", spec.app]
        assert "--shared-port" not in process.command()
    assert one.gateway_url == one["gateway"].url


def test_replicas_serve_the_shared_port_and_are_given_the_others_shared_ports() -> None:
    two = platform(2)
    assert [p.name for p in two] == [f"{s.name}-{n}" for s in SERVICES for n in (1, 2)]
    assert two.gateway_url == service_url(PORTS["gateway"])
    own_ports = [p.port for p in two]
    assert len(set(own_ports)) == len(own_ports)
    assert not set(own_ports) & set(PORTS.values())
    for spec in SERVICES:
        for process in two.replicas_of(spec.name):
            assert process.service == spec.name
            assert process.shared_port == PORTS[spec.name]
            assert process.command()[1:4] == ["-m", "deploy.local.replica", spec.app]
            assert process.command()[-2:] == ["--shared-port", str(PORTS[spec.name])]
            assert process.env["SERVICE_NAME"] == spec.name
            assert process.env["PYTHONPATH"].split(":")[0].endswith(f"services/{spec.name}")
            # every replica reaches the other services through their shared ports
            for other in SERVICES:
                if other.url_env:
                    assert process.env.get(other.url_env) in (None, service_url(PORTS[other.name]))
        assert two[spec.name] is two.replicas_of(spec.name)[0]
    first, second = two.replicas_of("orders")
    assert first.env["DATABASE_URL"] == second.env["DATABASE_URL"]  # one role per service
    assert two.replicas_of("orders")[1].log_file.name == "orders-2.log"


def test_a_replica_names_its_service_for_its_code_and_its_log() -> None:
    replica = ServiceProcess(
        "orders-2",
        "orders.app:create_app",
        9001,
        {},
        Path("/tmp"),
        service="orders",
        shared_port=8001,
    )
    assert replica.log_file.name == "orders-2.log"
    assert replica.env["PYTHONPATH"].split(":")[0].endswith("services/orders")


def test_fewer_than_one_replica_is_refused() -> None:
    with pytest.raises(ValueError):
        platform(0)
