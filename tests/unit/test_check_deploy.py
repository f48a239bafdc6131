"""deploy/check_deploy.py passes the deployment files as committed and fails each broken
variant an operator could be bitten by, naming the problem."""

import copy
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy import check_deploy as cd

ROOT = Path(__file__).resolve().parents[2]
Doc = dict[str, Any]


@pytest.fixture(scope="module")
def compose() -> Doc:
    return yaml.safe_load(cd.COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def schema() -> Doc:
    return cd.compose_schema()  # the pinned compose-go module, from Go's module cache


def test_the_compose_file_passes(compose: Doc, schema: Doc):
    assert cd.check_compose(compose, schema) == []


def _services(c: Doc) -> Doc:
    return c["services"]


def move_kafka_volume(c: Doc) -> None:
    _services(c)["kafka"]["volumes"] = ["kafkadata:/var/lib/kafka/elsewhere"]


def drop_log_dirs(c: Doc) -> None:
    del _services(c)["kafka"]["environment"]["KAFKA_LOG_DIRS"]


def postgres_17(c: Doc) -> None:
    _services(c)["postgres"]["image"] = "postgres:17"


def postgres_old_mount(c: Doc) -> None:
    _services(c)["postgres"]["volumes"] = ["pgdata:/var/lib/postgresql/data"]


def no_healthcheck(c: Doc) -> None:
    del _services(c)["stock"]["healthcheck"]


def start_before_migrations(c: Doc) -> None:
    del _services(c)["orders"]["depends_on"]["orders-migrate"]


def migrate_before_roles(c: Doc) -> None:
    _services(c)["webhooks-migrate"]["depends_on"] = {}


def wrong_migrate_command(c: Doc) -> None:
    _services(c)["fulfilment-migrate"]["command"] = ["python", "-m", "fulfilment"]


def topic_settings_not_passed(c: Doc) -> None:
    del _services(c)["webhooks"]["environment"]["KAFKA_MIN_INSYNC_REPLICAS"]


def unknown_key(c: Doc) -> None:
    _services(c)["gateway"]["helthcheck"] = {"test": ["CMD", "true"]}


def waits_for_health_of_a_one_shot(c: Doc) -> None:
    _services(c)["gateway"]["depends_on"]["db-roles"] = {"condition": "service_healthy"}


@pytest.mark.parametrize(
    ("breaks", "message"),
    [
        (move_kafka_volume, "KAFKA_LOG_DIRS /var/lib/kafka/data is not the mount point"),
        (drop_log_dirs, "/tmp/kraft-combined-logs"),
        (postgres_17, "is not PostgreSQL 18"),
        (postgres_old_mount, "no named volume at /var/lib/postgresql"),
        (no_healthcheck, "stock: long-running but has no healthcheck"),
        (start_before_migrations, "orders: does not wait for orders-migrate"),
        (migrate_before_roles, "webhooks-migrate: does not wait for db-roles"),
        (wrong_migrate_command, "`python -m fulfilment migrate`"),
        (topic_settings_not_passed, "webhooks: does not pass KAFKA_MIN_INSYNC_REPLICAS"),
        (unknown_key, "compose schema: services/gateway: Unevaluated properties are not allowed"),
        (waits_for_health_of_a_one_shot, "waits for db-roles to be healthy"),
    ],
)
def test_a_broken_compose_file_fails(
    compose: Doc, schema: Doc, breaks: Callable[[Doc], None], message: str
):
    broken = copy.deepcopy(compose)
    breaks(broken)
    problems = cd.check_compose(broken, schema)
    assert any(message in p for p in problems), problems


def test_interpolation_compose_cannot_read_fails():
    text = cd.COMPOSE_FILE.read_text()
    assert cd.check_interpolation(text) == []
    broken = text.replace("${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}", "${POSTGRES_PASSWORD")
    [problem] = cd.check_interpolation(broken)
    assert "interpolation compose cannot read: POSTGRES_PASSWORD: ${POSTGRES_PASSWORD" in problem
    assert cd.check_interpolation("command: echo $(date)") != []  # a shell's `$` needs `$$`


DOCKERFILE = cd.DOCKERFILE.read_text()


def test_the_dockerfile_passes():
    assert cd.check_dockerfile(DOCKERFILE) == []


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("FROM ${PYTHON_IMAGE} AS deps", "FROM scratch AS unused", "copies nothing"),
        ("USER 10001:10001", "USER root", "numeric non-root"),
        ("HEALTHCHECK", "# HEALTHCHECK", "no HEALTHCHECK on /ready"),
        ("ARG SERVICE\n", "ARG SERVICE=orders\n", "ARG SERVICE"),
    ],
)
def test_a_broken_dockerfile_fails(old: str, new: str, message: str):
    assert old in DOCKERFILE
    problems = cd.check_dockerfile(DOCKERFILE.replace(old, new))
    assert any(message in p for p in problems), problems


def test_a_dockerfile_left_beside_a_service_fails(tmp_path: Path):
    (tmp_path / ".dockerignore").write_text("*\n")
    (tmp_path / "services" / "orders").mkdir(parents=True)
    (tmp_path / "services" / "orders" / "Dockerfile").write_text("FROM python\n")
    problems = cd.check_dockerfile(DOCKERFILE, root=tmp_path)
    assert any("services/orders/Dockerfile" in p for p in problems), problems


def base_manifests() -> list[Doc]:
    """The base's own files, as kustomize reads them, with the ConfigMap it generates."""
    docs = [
        doc
        for path in sorted((cd.K8S / "base").glob("*.yaml"))
        if path.name != "kustomization.yaml"
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]
    literals = yaml.safe_load((cd.K8S / "base" / "kustomization.yaml").read_text())[
        "configMapGenerator"
    ][0]["literals"]
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "fulfil-config"}}
    config["data"] = dict(literal.split("=", 1) for literal in literals)
    return [config, *docs]


def test_the_base_manifests_pass():
    docs = base_manifests()
    assert cd.schema_problems(docs, cd.KUBERNETES_VERSION) == []
    assert cd.check_manifests(docs) == []


def find(docs: list[Doc], kind: str, name: str) -> Doc:
    [doc] = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def container(docs: list[Doc], name: str) -> Doc:
    return find(docs, "Deployment", name)["spec"]["template"]["spec"]["containers"][0]


def no_readiness(docs: list[Doc]) -> None:
    del container(docs, "stock")["readinessProbe"]


def liveness_on_ready(docs: list[Doc]) -> None:
    container(docs, "orders")["livenessProbe"]["httpGet"]["path"] = "/ready"


def no_limits(docs: list[Doc]) -> None:
    del container(docs, "webhooks")["resources"]["limits"]


def writable_root(docs: list[Doc]) -> None:
    container(docs, "gateway")["securityContext"]["readOnlyRootFilesystem"] = False


def webhooks_reach_stock(docs: list[Doc]) -> None:
    rule = find(docs, "NetworkPolicy", "stock")["spec"]["ingress"][0]
    rule["from"].append({"podSelector": {"matchLabels": {"app.kubernetes.io/name": "webhooks"}}})


def anyone_reaches_orders(docs: list[Doc]) -> None:
    del find(docs, "NetworkPolicy", "orders")["spec"]["ingress"][0]["from"]


def no_pdb(docs: list[Doc]) -> None:
    docs.remove(find(docs, "PodDisruptionBudget", "fulfilment"))


def no_migration(docs: list[Doc]) -> None:
    job = find(docs, "Job", "fulfil-migrate")["spec"]["template"]["spec"]
    job["containers"] = [c for c in job["containers"] if c["name"] != "stock"]


def hpa_of_nothing(docs: list[Doc]) -> None:
    find(docs, "HorizontalPodAutoscaler", "orders")["spec"]["scaleTargetRef"]["name"] = "order"


def min_isr_above_replicas(docs: list[Doc]) -> None:
    find(docs, "ConfigMap", "fulfil-config")["data"]["KAFKA_MIN_INSYNC_REPLICAS"] = "2"


def replicas_beside_an_autoscaler(docs: list[Doc]) -> None:
    find(docs, "Deployment", "gateway")["spec"]["replicas"] = 3


def a_real_secret(docs: list[Doc]) -> None:
    find(docs, "Secret", "fulfil-gateway")["stringData"]["ADMIN_TOKEN"] = "s3cr3t-" * 6


@pytest.mark.parametrize(
    ("breaks", "message"),
    [
        (a_real_secret, "Secret/fulfil-gateway: ADMIN_TOKEN is not the placeholder"),
        (replicas_beside_an_autoscaler, "Deployment/gateway: sets replicas, which undoes"),
        (no_readiness, "Deployment/stock container stock: no readinessProbe on /ready"),
        (liveness_on_ready, "no livenessProbe on /health"),
        (no_limits, "no cpu and memory limits"),
        (writable_root, "the root file system is writable"),
        (webhooks_reach_stock, "reach stock (only ['gateway'] may)"),
        (anyone_reaches_orders, "lets anyone reach orders"),
        (no_pdb, "Deployment/fulfilment: no PodDisruptionBudget"),
        (no_migration, "no Job container runs `python -m stock migrate`"),
        (hpa_of_nothing, "which is not a Deployment here"),
        (min_isr_above_replicas, "KAFKA_MIN_INSYNC_REPLICAS (2) is larger than"),
    ],
)
def test_broken_manifests_fail(breaks: Callable[[list[Doc]], None], message: str):
    docs = copy.deepcopy(base_manifests())
    breaks(docs)
    problems = cd.check_manifests(docs)
    assert any(message in p for p in problems), problems


def test_a_manifest_the_kubernetes_schema_refuses_fails():
    docs = copy.deepcopy(base_manifests())
    find(docs, "Deployment", "orders")["spec"]["replica"] = 2  # a typo: strict refuses it
    container(docs, "stock")["resources"]["requests"]["cpu"] = ["100m"]
    problems = cd.schema_problems(docs, cd.KUBERNETES_VERSION)
    assert any(p.startswith("Deployment/orders: ") and "replica" in p for p in problems)
    assert any(p.startswith("Deployment/stock: ") and "cpu" in p for p in problems), problems


def test_production_needs_replicas_and_a_replicated_kafka():
    problems = cd.check_manifests(base_manifests(), production=True)
    assert "Deployment/orders: fewer than 2 replicas in production" in problems  # HPA min 1
    assert "Deployment/webhooks: fewer than 2 replicas in production" in problems
    assert "ConfigMap/fulfil-config: KAFKA_REPLICATION_FACTOR below 3 in production" in problems


@pytest.fixture(scope="module")
def kustomize() -> Path:
    return cd.kustomize()  # pinned, built once into .cache/tools (make lint builds it first)


def test_an_overlay_that_breaks_the_base_fails_after_rendering(kustomize: Path, tmp_path: Path):
    (tmp_path / "kustomization.yaml").write_text(
        f"resources: [{os.path.relpath(cd.K8S / 'base', tmp_path)}]\n"
        "patches:\n"
        "  - target: {kind: Deployment, name: webhooks}\n"
        "    patch: |\n"
        "      - op: move\n"  # a typo: livenessProbes
        "        from: /spec/template/spec/containers/0/livenessProbe\n"
        "        path: /spec/template/spec/containers/0/livenessProbes\n"
    )
    docs = cd.render(tmp_path, kustomize)
    assert cd.check_manifests(docs) == [
        "Deployment/webhooks container webhooks: no livenessProbe on /health"
    ]
    [problem] = cd.schema_problems(docs, cd.KUBERNETES_VERSION)
    assert problem.startswith("Deployment/webhooks: ") and "livenessProbes" in problem


def test_an_overlay_kustomize_cannot_render_fails(kustomize: Path, tmp_path: Path):
    (tmp_path / "kustomization.yaml").write_text("resources: [missing.yaml]\n")
    with pytest.raises(ValueError, match=r"kustomize build .*missing\.yaml"):
        cd.render(tmp_path, kustomize)
