"""Checks the deployment files offline: deploy/docker-compose.yml, deploy/Dockerfile and the
Kubernetes manifests under deploy/k8s/ (the base and every overlay, as kustomize renders them).

    python deploy/check_deploy.py   (part of `make lint`)

- Compose: every `$` interpolation well formed; valid against the compose-spec JSON schema
  (from the Go module github.com/compose-spec/compose-go/v2, pinned below, fetched once
  through the Go module proxy into Go's module cache, checksum-verified by the Go checksum
  database), plus what the
  platform needs: Kafka's KAFKA_LOG_DIRS is the mount point of a named volume, PostgreSQL 18
  with its volume at /var/lib/postgresql (18's layout), a healthcheck on every long-running
  service, every service built from deploy/Dockerfile waits for its own one-shot
  `python -m <service> migrate` step, which waits for db-roles, which waits for PostgreSQL;
  the Kafka topic settings reach every service.
- Dockerfile: one, multi-stage, parameterised by the SERVICE build arg, a numeric non-root
  USER, a HEALTHCHECK on /ready; a .dockerignore; no services/*/Dockerfile left.
- Kubernetes: `kustomize build` (kustomize pinned below, built once by `go install` into
  .cache/tools/) of deploy/k8s/base and deploy/k8s/overlays/*; every manifest validated
  against the Kubernetes schemas of KUBERNETES_VERSION in strict mode (kubernetes-validate,
  which bundles them), plus: each Deployment has /ready and /health probes, resource
  requests and limits, runs non-root on a read-only root file system, and has a Service, a
  PodDisruptionBudget and a NetworkPolicy; only the gateway (and fulfilment, towards orders)
  may reach the internal services; the migration Job runs `python -m <service> migrate` for
  each service; HorizontalPodAutoscalers name Deployments that exist; the topic settings in
  the ConfigMap validate as the services' settings do; every Secret holds placeholders only.
Exit 1 when anything fails, naming each problem.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "deploy" / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
K8S = ROOT / "deploy" / "k8s"
TOOLS = ROOT / ".cache" / "tools"
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

SERVICES = ("gateway", "orders", "stock", "fulfilment", "webhooks")
# Who may call whom (INTERNAL_CALLERS): everything else reaches a service through the gateway.
CALLERS = {
    "orders": {"gateway", "fulfilment"},
    "stock": {"gateway"},
    "fulfilment": {"gateway"},
    "webhooks": {"gateway"},
}
TOPIC_SETTINGS = (
    "KAFKA_REPLICATION_FACTOR",
    "KAFKA_MIN_INSYNC_REPLICAS",
    "KAFKA_RETENTION_MS",
    "KAFKA_DLQ_RETENTION_MS",
)

KUSTOMIZE_VERSION = "v5.8.2"  # needs Go 1.26 to build (v5.8.3 needs 1.27)
COMPOSE_GO_VERSION = "v2.16.2"
KUBERNETES_VERSION = "1.33.0"
POSTGRES_MAJOR = "18"
PLACEHOLDER = "REPLACE-ME"  # the only value a Secret in the repository may hold


# ---------------------------------------------------------------------------------- tools


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise SystemExit(
            "check_deploy needs Go (https://go.dev/dl/) once, to build kustomize and fetch the"
            " compose schema through the Go module proxy; both are kept in .cache/ and Go's"
            " module cache afterwards"
        )
    return go


def kustomize() -> Path:
    """The pinned kustomize, built on first use (`go install`, about 2 minutes) and kept."""
    target = TOOLS / f"kustomize-{KUSTOMIZE_VERSION}"
    binary = target / "kustomize"
    if not binary.exists():
        print(f"building kustomize {KUSTOMIZE_VERSION} into {target} (once)", file=sys.stderr)
        subprocess.run(
            [_go(), "install", f"sigs.k8s.io/kustomize/kustomize/v5@{KUSTOMIZE_VERSION}"],
            env={**os.environ, "GOBIN": str(target)},
            check=True,
        )
    return binary


def compose_schema() -> dict[str, Any]:
    """compose-spec.json of the pinned compose-go module (the schema `docker compose config`
    itself validates against), from Go's module cache, fetched there once."""
    cached = TOOLS / f"compose-spec-{COMPOSE_GO_VERSION}.json"
    if not cached.exists():
        found = subprocess.run(
            [
                _go(),
                "mod",
                "download",
                "-json",
                f"github.com/compose-spec/compose-go/v2@{COMPOSE_GO_VERSION}",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        module_dir = Path(json.loads(found.stdout)["Dir"])
        TOOLS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(module_dir / "schema" / "compose-spec.json", cached)
    return json.loads(cached.read_text())


def render(overlay: Path, binary: Path | None = None) -> list[dict[str, Any]]:
    out = subprocess.run(
        [str(binary or kustomize()), "build", str(overlay)],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        shown = overlay.relative_to(ROOT) if overlay.is_relative_to(ROOT) else overlay
        raise ValueError(f"kustomize build {shown}: {out.stderr.strip()}")
    return [doc for doc in yaml.load_all(out.stdout, Loader=LOADER) if doc]


# -------------------------------------------------------------------------------- compose


def _command(value: Any) -> list[str]:
    return value.split() if isinstance(value, str) else list(value or [])


def _depends(service: Mapping[str, Any]) -> dict[str, str]:
    found = service.get("depends_on") or {}
    if isinstance(found, list):
        return dict.fromkeys(found, "service_started")
    return {name: (how or {}).get("condition", "service_started") for name, how in found.items()}


def _environment(service: Mapping[str, Any]) -> dict[str, Any]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return dict(env)


def _is_one_shot(service: Mapping[str, Any]) -> bool:
    return str(service.get("restart", "no")) == "no"


def check_compose(compose: Mapping[str, Any], schema: Mapping[str, Any] | None) -> list[str]:
    problems: list[str] = []
    if schema is not None:
        validator = jsonschema.validators.validator_for(schema)(schema)
        for error in sorted(validator.iter_errors(compose), key=lambda e: list(e.path)):
            where = "/".join(str(p) for p in error.path) or "(top)"
            problems.append(f"compose schema: {where}: {error.message}")
    services: Mapping[str, Any] = compose.get("services") or {}
    volumes = set(compose.get("volumes") or {})

    def mounts(service: Mapping[str, Any]) -> dict[str, str]:
        """target -> named volume"""
        found = {}
        for volume in service.get("volumes") or []:
            if isinstance(volume, str):
                source, _, rest = volume.partition(":")
                found[rest.split(":")[0]] = source
            else:
                found[volume.get("target", "")] = volume.get("source", "")
        return found

    kafka = services.get("kafka")
    if kafka is None:
        problems.append("no `kafka` service")
    else:
        log_dirs = _environment(kafka).get("KAFKA_LOG_DIRS")
        if not log_dirs:
            problems.append(
                "kafka: KAFKA_LOG_DIRS is not set: the apache/kafka image writes to"
                " /tmp/kraft-combined-logs, which a recreate loses"
            )
        else:
            for directory in str(log_dirs).split(","):
                if mounts(kafka).get(directory) not in volumes:
                    problems.append(
                        f"kafka: KAFKA_LOG_DIRS {directory} is not the mount point of a named"
                        f" volume (mounts: {mounts(kafka)})"
                    )
    postgres = services.get("postgres")
    if postgres is None:
        problems.append("no `postgres` service")
    else:
        image = str(postgres.get("image", ""))
        if not re.fullmatch(rf"postgres:{POSTGRES_MAJOR}(\.\d+)?([-.].*)?", image):
            problems.append(f"postgres: image {image!r} is not PostgreSQL {POSTGRES_MAJOR}")
        if mounts(postgres).get("/var/lib/postgresql") not in volumes:
            problems.append(
                "postgres: no named volume at /var/lib/postgresql (PostgreSQL 18's image keeps"
                f" its data below it; mounts: {mounts(postgres)})"
            )
    for name, service in services.items():
        health = service.get("healthcheck") or {}
        if _is_one_shot(service):
            continue
        if health.get("disable") or not health.get("test"):
            problems.append(f"{name}: long-running but has no healthcheck")
        for other, condition in _depends(service).items():
            if other not in services:
                problems.append(f"{name}: depends on {other}, which is not a service")
            elif condition == "service_healthy" and not (
                services[other].get("healthcheck") or {}
            ).get("test"):
                problems.append(f"{name}: waits for {other} to be healthy; it has no healthcheck")
            elif condition == "service_completed_successfully" and not _is_one_shot(
                services[other]
            ):
                problems.append(f"{name}: waits for {other} to complete; it never does")
    for svc in SERVICES:
        service, step = services.get(svc), services.get(f"{svc}-migrate")
        if service is None:
            problems.append(f"no `{svc}` service")
            continue
        build = service.get("build") or {}
        if (
            build.get("dockerfile") != "deploy/Dockerfile"
            or (build.get("args") or {}).get("SERVICE") != svc
        ):
            problems.append(f"{svc}: not built from deploy/Dockerfile with SERVICE={svc}")
        env = _environment(service)
        missing = [s for s in TOPIC_SETTINGS if s not in env]
        if missing:
            problems.append(f"{svc}: does not pass {', '.join(missing)}")
        if step is None:
            problems.append(f"no `{svc}-migrate` step")
            continue
        if _command(step.get("command")) != ["python", "-m", svc, "migrate"]:
            problems.append(f"{svc}-migrate: command is not `python -m {svc} migrate`")
        if not _is_one_shot(step):
            problems.append(f'{svc}-migrate: restarts (`restart` must be "no")')
        if step.get("image") != service.get("image") or step.get("build") != build:
            problems.append(f"{svc}-migrate: not the image of {svc}")
        if _depends(service).get(f"{svc}-migrate") != "service_completed_successfully":
            problems.append(f"{svc}: does not wait for {svc}-migrate to complete")
        if _depends(step).get("db-roles") != "service_completed_successfully":
            problems.append(f"{svc}-migrate: does not wait for db-roles to complete")
    roles = services.get("db-roles")
    if roles is None or _depends(roles).get("postgres") != "service_healthy":
        problems.append("db-roles: missing, or does not wait for postgres to be healthy")
    tenant = services.get("demo-tenant")
    if tenant is None or "create-tenant" not in " ".join(_command(tenant.get("command"))):
        problems.append("demo-tenant: missing, or does not run gateway.cli create-tenant")
    elif _depends(tenant).get("gateway-migrate") != "service_completed_successfully":
        problems.append("demo-tenant: does not wait for gateway-migrate to complete")
    return problems


_VARIABLE = re.compile(
    r"\$(?:\$|[A-Za-z_][A-Za-z0-9_]*|\{[A-Za-z_][A-Za-z0-9_]*(?:(?::?[-?+])[^{}$]*)?\})"
)


def check_interpolation(text: str) -> list[str]:
    """Every `$` is `$$` (a literal dollar), `$NAME` or `${NAME}` with an optional
    `:-default`, `-default`, `:?error`, `?error`, `:+alt` or `+alt`, as compose interpolates."""
    problems = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("#"):
            continue
        rest = _VARIABLE.sub("", line)
        if "$" in rest:
            problems.append(f"line {number}: interpolation compose cannot read: {line.strip()}")
    return problems


# ----------------------------------------------------------------------------- Dockerfile


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments out."""
    found: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        if line.strip().startswith("#") or not line.strip():
            continue
        pending += line.rstrip().removesuffix("\\") + " "
        if not line.rstrip().endswith("\\"):
            keyword, _, rest = pending.strip().partition(" ")
            found.append((keyword.upper(), " ".join(rest.split())))
            pending = ""
    return found


def check_dockerfile(text: str, root: Path = ROOT) -> list[str]:
    problems: list[str] = []
    steps = instructions(text)
    if sum(1 for keyword, _ in steps if keyword == "FROM") < 2:
        problems.append("Dockerfile: not multi-stage (dependencies built in a stage of their own)")
    stages = {rest.split()[-1] for keyword, rest in steps if keyword == "FROM" and " AS " in rest}
    copied = {
        rest.split()[0].removeprefix("--from=")
        for keyword, rest in steps
        if keyword == "COPY" and rest.startswith("--from=")
    }
    if not copied & stages:
        problems.append("Dockerfile: the runtime stage copies nothing from a build stage")
    if ("ARG", "SERVICE") not in steps:
        problems.append("Dockerfile: no `ARG SERVICE`: one image recipe for every service")
    users = [rest for keyword, rest in steps if keyword == "USER"]
    if not users or not re.fullmatch(r"[1-9]\d*(:\d+)?", users[-1]):
        problems.append("Dockerfile: the last USER is not a numeric non-root user")
    if not any(keyword == "HEALTHCHECK" and "/ready" in rest for keyword, rest in steps):
        problems.append("Dockerfile: no HEALTHCHECK on /ready")
    if not (root / ".dockerignore").exists():
        problems.append(".dockerignore: missing at the repository root")
    left = sorted(str(p.relative_to(root)) for p in root.glob("services/*/Dockerfile"))
    if left:
        problems.append(f"Dockerfiles left beside the services: {left} (use deploy/Dockerfile)")
    return problems


# ----------------------------------------------------------------------------- Kubernetes


def _name(doc: Mapping[str, Any]) -> str:
    return f"{doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"


def schema_problems(docs: Iterable[Mapping[str, Any]], version: str) -> list[str]:
    problems = []
    for doc in docs:
        try:
            kubernetes_validate.validate(dict(doc), version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(p) for p in exc.path) or "(top)"
            problems.append(f"{_name(doc)}: {where}: {exc.message}")
        except (
            kubernetes_validate.SchemaNotFoundError,
            kubernetes_validate.InvalidSchemaError,
        ) as exc:
            problems.append(f"{_name(doc)}: {exc.message}")
    return problems


def _selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    wanted = (selector or {}).get("matchLabels") or {}
    return bool(wanted) and all(labels.get(k) == v for k, v in wanted.items())


def _topic_settings_problems(config: Mapping[str, str]) -> list[str]:
    from pydantic import ValidationError

    from fulfilkit.settings import ServiceSettings

    values = {k.lower(): v for k, v in config.items() if k in (*TOPIC_SETTINGS, "KAFKA_PARTITIONS")}
    try:
        ServiceSettings(environment="development", **values)
    except ValidationError as exc:
        return [f"ConfigMap: {e['msg']}" for e in exc.errors()]
    return []


def check_manifests(docs: list[Mapping[str, Any]], *, production: bool = False) -> list[str]:
    problems: list[str] = []
    by_kind: dict[str, list[Mapping[str, Any]]] = {}
    for doc in docs:
        by_kind.setdefault(doc.get("kind", "?"), []).append(doc)
    deployments = {d["metadata"]["name"]: d for d in by_kind.get("Deployment", [])}
    for svc in SERVICES:
        if svc not in deployments:
            problems.append(f"no Deployment/{svc}")
    for name, deployment in deployments.items():
        spec = deployment["spec"]
        pod = spec["template"]["spec"]
        labels = spec["template"]["metadata"].get("labels") or {}
        scalers = [
            h
            for h in by_kind.get("HorizontalPodAutoscaler", [])
            if h["spec"]["scaleTargetRef"].get("name") == name
        ]
        if scalers and "replicas" in spec:
            problems.append(
                f"Deployment/{name}: sets replicas, which undoes its HorizontalPodAutoscaler's"
                " work at every apply"
            )
        least = scalers[0]["spec"].get("minReplicas", 1) if scalers else spec.get("replicas", 1)
        if production and least < 2:
            problems.append(f"Deployment/{name}: fewer than 2 replicas in production")
        if not (pod.get("securityContext") or {}).get("runAsNonRoot"):
            problems.append(f"Deployment/{name}: the pod does not set runAsNonRoot")
        for container in pod.get("containers", []):
            where = f"Deployment/{name} container {container.get('name')}"
            for probe, path in (("readinessProbe", "/ready"), ("livenessProbe", "/health")):
                if ((container.get(probe) or {}).get("httpGet") or {}).get("path") != path:
                    problems.append(f"{where}: no {probe} on {path}")
            resources = container.get("resources") or {}
            for part in ("requests", "limits"):
                if not {"cpu", "memory"} <= set(resources.get(part) or {}):
                    problems.append(f"{where}: no cpu and memory {part}")
            security = container.get("securityContext") or {}
            if not security.get("readOnlyRootFilesystem"):
                problems.append(f"{where}: the root file system is writable")
            if security.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: allowPrivilegeEscalation is not false")
        for kind in ("Service", "PodDisruptionBudget", "NetworkPolicy"):
            key = "podSelector" if kind == "NetworkPolicy" else "selector"
            found = [
                d
                for d in by_kind.get(kind, [])
                if (
                    _selects(d["spec"].get(key), labels)
                    if kind != "Service"
                    else all(
                        labels.get(k) == v for k, v in (d["spec"].get("selector") or {}).items()
                    )
                    and d["spec"].get("selector")
                )
            ]
            if not found:
                problems.append(f"Deployment/{name}: no {kind} selects its pods")
        callers = CALLERS.get(name)
        if callers is not None:
            for policy in by_kind.get("NetworkPolicy", []):
                if not _selects(policy["spec"].get("podSelector"), labels):
                    continue
                for rule in policy["spec"].get("ingress") or []:
                    sources = rule.get("from")
                    if not sources:
                        problems.append(
                            f"NetworkPolicy/{policy['metadata']['name']}: lets anyone reach {name}"
                        )
                        continue
                    for source in sources:
                        allowed = ((source.get("podSelector") or {}).get("matchLabels") or {}).get(
                            "app.kubernetes.io/name"
                        )
                        if allowed not in callers or set(source) != {"podSelector"}:
                            problems.append(
                                f"NetworkPolicy/{policy['metadata']['name']}: lets {source} reach"
                                f" {name} (only {sorted(callers)} may)"
                            )
    for hpa in by_kind.get("HorizontalPodAutoscaler", []):
        target = hpa["spec"]["scaleTargetRef"]
        if target.get("kind") != "Deployment" or target.get("name") not in deployments:
            problems.append(f"{_name(hpa)}: scales {target}, which is not a Deployment here")
        if hpa["spec"].get("minReplicas", 1) > hpa["spec"]["maxReplicas"]:
            problems.append(f"{_name(hpa)}: minReplicas above maxReplicas")
    commands = {
        tuple(container.get("command") or [])
        for job in by_kind.get("Job", [])
        for container in job["spec"]["template"]["spec"].get("containers", [])
    }
    for svc in SERVICES:
        if ("python", "-m", svc, "migrate") not in commands:
            problems.append(f"no Job container runs `python -m {svc} migrate`")
    configs = by_kind.get("ConfigMap", [])
    if not configs:
        problems.append("no ConfigMap")
    for config in configs:
        data = config.get("data") or {}
        problems += _topic_settings_problems(data)
        if production and int(data.get("KAFKA_REPLICATION_FACTOR", 1)) < 3:
            problems.append(f"{_name(config)}: KAFKA_REPLICATION_FACTOR below 3 in production")
    if not by_kind.get("Secret"):
        problems.append("no Secret")
    for secret in by_kind.get("Secret", []):
        for key, value in {
            **(secret.get("stringData") or {}),
            **(secret.get("data") or {}),
        }.items():
            if value != PLACEHOLDER and not key.endswith("_USERNAME"):
                problems.append(
                    f"{_name(secret)}: {key} is not the placeholder {PLACEHOLDER!r}: real"
                    " secrets stay out of the repository (docs/operations.md)"
                )
    return problems


# ---------------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubernetes-version", default=KUBERNETES_VERSION)
    args = parser.parse_args()
    started = time.monotonic()
    problems: list[str] = []

    compose = yaml.load(COMPOSE_FILE.read_text(), Loader=LOADER)
    problems += [f"docker-compose.yml: {p}" for p in check_compose(compose, compose_schema())]
    problems += [f"docker-compose.yml: {p}" for p in check_interpolation(COMPOSE_FILE.read_text())]
    problems += check_dockerfile(DOCKERFILE.read_text() if DOCKERFILE.exists() else "")

    overlays = [K8S / "base", *sorted(p for p in (K8S / "overlays").iterdir() if p.is_dir())]
    counted = 0
    for overlay in overlays:
        label = str(overlay.relative_to(ROOT))
        try:
            docs = render(overlay)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        counted += len(docs)
        found = schema_problems(docs, args.kubernetes_version)
        found += check_manifests(docs, production=overlay.name == "production")
        problems += [f"{label}: {p}" for p in found]
    print(
        f"compose: {len(compose.get('services', {}))} services; Dockerfile; kubernetes"
        f" {args.kubernetes_version} (strict): {counted} manifests in {len(overlays)} renders;"
        f" {time.monotonic() - started:.1f} s"
    )
    for problem in problems:
        print("FAIL", problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
