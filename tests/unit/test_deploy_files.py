"""The Dockerfile, docker-compose.yml and deploy/k8s/base manifests agree with the code.

No container engine is needed: the files are parsed, and every environment
variable they set must name a real setting of the service that reads it.
The rendered production overlay, schema validation and KEDA are checked in
test_k8s_manifests.py.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

from services.commissions.config import Settings as CommissionsSettings
from services.notifications.config import Settings as NotificationsSettings
from services.portal.config import Settings as PortalSettings
from services.registration.config import Settings as RegistrationSettings

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
DEPLOY = ROOT / "deploy" / "k8s" / "base"

SERVICES: dict[str, type[BaseSettings]] = {
    "registration": RegistrationSettings,
    "commissions": CommissionsSettings,
    "notifications": NotificationsSettings,
}
# The web front end: an API-like container with no worker, broker or database.
APPS: dict[str, type[BaseSettings]] = {**SERVICES, "portal": PortalSettings}
DEFAULT_PORTS = {"registration": 8001, "commissions": 8002, "notifications": 8003, "portal": 8004}
ROLES = ("api", "worker")
CONTAINERS = [f"{svc}-{role}" for svc in SERVICES for role in ROLES]
DEV_ONLY_PACKAGES = ("noida-db", "noida_db", "secantusdb")


def env_names(settings_cls: type[BaseSettings]) -> set[str]:
    """The environment variables a Settings class reads (upper-cased)."""
    names = set()
    for field_name, field in settings_cls.model_fields.items():
        alias = field.validation_alias
        names.add(alias.upper() if isinstance(alias, str) else field_name.upper())
    return names


SETTING_NAMES = {svc: env_names(cls) for svc, cls in APPS.items()}
ALL_SETTING_NAMES = set().union(*SETTING_NAMES.values())


def service_of(container_name: str) -> str:
    svc, _, role = container_name.rpartition("-")
    assert (svc in SERVICES and role in ROLES) or container_name == "portal-api", container_name
    return svc


# ---------------------------------------------------------------- compose


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def _channelkeep(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in compose["services"].items()
        if "build" in service or str(service.get("image", "")).startswith("channelkeep")
    }


def _command(value: str | list[str]) -> list[str]:
    return shlex.split(value) if isinstance(value, str) else [str(part) for part in value]


def test_settings_classes_expose_the_contract_variables() -> None:
    # Guards env_names itself: per-service aliases, not the bare field names.
    assert "REGISTRATION_PORT" in SETTING_NAMES["registration"]
    assert "PORT" not in SETTING_NAMES["registration"]
    assert {"KAFKA_BOOTSTRAP", "MONGO_URL", "ADMIN_TOKEN", "WORKER_HEARTBEAT_FILE"} <= (
        SETTING_NAMES["commissions"]
    )
    assert {"SMTP_HOST", "SMTP_PORT"} <= SETTING_NAMES["notifications"]


def test_kafka_is_apache_kafka_in_kraft_mode(compose: dict[str, Any]) -> None:
    kafka = compose["services"]["kafka"]
    image = kafka["image"]
    assert image.startswith("apache/kafka:")
    assert image.split(":", 1)[1] not in ("", "latest")
    env = _environment(kafka)
    assert "broker" in env["KAFKA_PROCESS_ROLES"] and "controller" in env["KAFKA_PROCESS_ROLES"]
    for key in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
    ):
        assert env[key] == "1", key
    test = " ".join(_command(kafka["healthcheck"]["test"]))
    assert "kafka-broker-api-versions.sh" in test or "kafka-topics.sh" in test


def test_mongo_is_a_single_node_replica_set(compose: dict[str, Any]) -> None:
    mongo = compose["services"]["mongo"]
    assert mongo["image"].split(":", 1)[0] == "mongo"
    assert mongo["image"].split(":", 1)[1] not in ("", "latest")
    assert "--replSet" in _command(mongo["command"])
    assert "rs.initiate" in " ".join(_command(mongo["healthcheck"]["test"]))


def test_kafka_and_mongo_keep_data_in_named_volumes(compose: dict[str, Any]) -> None:
    volumes = compose.get("volumes") or {}
    for name in ("kafka", "mongo"):
        mounts = compose["services"][name].get("volumes") or []
        named = [str(m).split(":", 1)[0] for m in mounts]
        assert any(volume in volumes for volume in named), name


def test_each_service_has_separate_api_and_worker_containers(compose: dict[str, Any]) -> None:
    ours = _channelkeep(compose)
    assert set(CONTAINERS) <= set(ours)
    for name in CONTAINERS:
        svc, role = service_of(name), name.rpartition("-")[2]
        assert _command(ours[name]["command"]) == [
            "python",
            "-m",
            f"services.{svc}.entrypoints.{role}",
        ]


def test_every_channelkeep_container_has_a_matching_healthcheck(
    compose: dict[str, Any],
) -> None:
    for name, service in _channelkeep(compose).items():
        svc, role = service_of(name), name.rpartition("-")[2]
        test = _command(service["healthcheck"]["test"])
        assert "chassis.healthcheck" in test, name
        env = _environment(service)
        if role == "api":
            port = env.get(f"{svc.upper()}_PORT", str(DEFAULT_PORTS[svc]))
            assert test[-3:] == ["http", port, "/healthz"], name
            assert any(str(p).endswith(f":{port}") for p in service.get("ports", [])), name
        else:
            assert env.get("WORKER_HEARTBEAT_FILE"), name
            assert test[-2:] == ["worker", env["WORKER_HEARTBEAT_FILE"]], name


def test_api_ports_are_published_on_the_contract_ports(compose: dict[str, Any]) -> None:
    for svc, port in DEFAULT_PORTS.items():
        published = [str(p) for p in compose["services"][f"{svc}-api"].get("ports", [])]
        assert any(p.endswith(f"{port}:{port}") for p in published), svc


def test_every_depends_on_waits_for_healthy(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        depends_on = service.get("depends_on")
        if depends_on is None:
            continue
        assert isinstance(depends_on, dict), f"{name}: depends_on needs conditions"
        for target, spec in depends_on.items():
            assert spec.get("condition") == "service_healthy", f"{name} -> {target}"
            assert "healthcheck" in compose["services"][target] or target == "mailpit"
    for name in CONTAINERS:
        depends_on = compose["services"][name]["depends_on"]
        assert {"kafka", "mongo"} <= set(depends_on), name


def test_channelkeep_containers_set_only_real_settings(compose: dict[str, Any]) -> None:
    for name, service in _channelkeep(compose).items():
        svc = service_of(name)
        unknown = {key.upper() for key in _environment(service)} - SETTING_NAMES[svc]
        assert not unknown, f"{name} sets variables no {svc} setting reads: {sorted(unknown)}"


def test_compose_runs_production_settings_without_a_default_token(
    compose: dict[str, Any],
) -> None:
    for name, service in _channelkeep(compose).items():
        env = _environment(service)
        assert env["ENVIRONMENT"] == "production", name
        assert env["HTTP_HOST"] == "0.0.0.0", name
        assert service.get("restart") == "unless-stopped", name
        if name == "portal-api":
            # No admin token and no database: it calls the partner APIs with partners' keys.
            assert not {"ADMIN_TOKEN", "MONGO_URL", "KAFKA_BOOTSTRAP"} & set(env), name
            continue
        assert env["ADMIN_TOKEN"].startswith("${ADMIN_TOKEN:?"), name
        assert "replicaSet=" in env["MONGO_URL"], name


def test_compose_requires_every_secret_without_a_safe_default(compose: dict[str, Any]) -> None:
    required = {
        "notifications-api": {"UNSUBSCRIBE_SECRET", "WEBHOOK_SECRET_KEYS"},
        "notifications-worker": {"UNSUBSCRIBE_SECRET", "WEBHOOK_SECRET_KEYS"},
        "portal-api": {"PORTAL_SESSION_SECRET"},
        "registration-api": {"CHECKOUT_TOKEN"},
    }
    services = compose["services"]
    for name, names in required.items():
        env = _environment(services[name])
        for variable in names:
            assert env[variable].startswith(f"${{{variable}:?"), (name, variable)
    # Optional ones come from the environment too, never a value in the file.
    optional = {"notifications-worker": "SMTP_PASSWORD"}
    for name, variable in optional.items():
        assert _environment(services[name])[variable] == f"${{{variable}:-}}", (name, variable)


def test_compose_workers_have_fixed_distinct_instance_ids(compose: dict[str, Any]) -> None:
    # The transactional id derives from WORKER_INSTANCE_ID: fixed, a restarted worker
    # fences its predecessor; distinct, two workers never fence each other.
    ids = {}
    for name in CONTAINERS:
        if name.endswith("-worker"):
            value = _environment(compose["services"][name]).get("WORKER_INSTANCE_ID", "")
            assert value and "$" not in value, name
            assert "deploy" not in compose["services"][name], f"{name}: replicas share one id"
            ids[name] = value
    assert len(set(ids.values())) == len(ids), ids


def test_compose_runs_the_portal_after_the_apis_it_calls(compose: dict[str, Any]) -> None:
    portal = compose["services"]["portal-api"]
    assert _command(portal["command"]) == ["python", "-m", "services.portal.entrypoints.api"]
    assert set(portal["depends_on"]) == {f"{svc}-api" for svc in SERVICES}
    env = _environment(portal)
    for svc in SERVICES:
        url = env[f"{svc.upper()}_URL"]
        assert url == f"http://{svc}-api:{DEFAULT_PORTS[svc]}", url


def test_notifications_sends_mail_to_the_compose_mail_sink(compose: dict[str, Any]) -> None:
    mailpit = compose["services"]["mailpit"]
    assert mailpit["image"].startswith("axllent/mailpit:")
    for role in ROLES:
        env = _environment(compose["services"][f"notifications-{role}"])
        assert env["SMTP_HOST"] == "mailpit" and env["SMTP_PORT"] == "1025"


# ------------------------------------------------------------- Dockerfile


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        keyword, _, rest = stripped.partition(" ")
        out.append((keyword.upper(), rest.strip()))
    return out


def test_dockerfile_is_multi_stage_and_runs_as_non_root() -> None:
    instructions = _instructions(DOCKERFILE.read_text(encoding="utf-8"))
    froms = [args for keyword, args in instructions if keyword == "FROM"]
    assert len(froms) >= 2
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    users = [args for keyword, args in instructions[last_from:] if keyword == "USER"]
    assert users, "the runtime stage sets no USER"
    user = users[-1].split(":", 1)[0]
    assert user not in ("root", "0")
    assert user == "10001"
    copies = [args for keyword, args in instructions[last_from:] if keyword == "COPY"]
    assert any("--from=" in args and "/opt/venv" in args for args in copies)


def test_dockerfile_installs_runtime_dependencies_only() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    runs = " ".join(args for keyword, args in _instructions(text) if keyword == "RUN").lower()
    assert "pip install" in runs
    for package in DEV_ONLY_PACKAGES:
        assert package not in runs, package
    assert "[dev]" not in runs
    env = " ".join(args for keyword, args in _instructions(text) if keyword == "ENV")
    assert "PYTHONUNBUFFERED=1" in env and "HTTP_HOST=0.0.0.0" in env


def test_dockerignore_keeps_local_state_out_of_the_image() -> None:
    entries = {
        line.strip().rstrip("/")
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    for required in (".venv", ".data", ".git", "tests", "bench", "docs/screenshots"):
        assert required in entries, required
    assert any("__pycache__" in entry for entry in entries)


# ----------------------------------------------------------- Kubernetes


def _deploy_documents() -> list[tuple[str, dict[str, Any]]]:
    documents = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if document:
                documents.append((path.name, document))
    return documents


@pytest.fixture(scope="module")
def manifests() -> list[tuple[str, dict[str, Any]]]:
    documents = _deploy_documents()
    assert documents
    return documents


def _of_kind(manifests: list[tuple[str, dict[str, Any]]], kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for _, doc in manifests if doc.get("kind") == kind}


def _workloads(manifests: list[tuple[str, dict[str, Any]]]) -> dict[str, dict]:
    """APIs are Deployments; workers StatefulSets (a stable pod name per worker)."""
    return {**_of_kind(manifests, "Deployment"), **_of_kind(manifests, "StatefulSet")}


def test_kustomization_lists_files_that_exist(manifests: list) -> None:
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text(encoding="utf-8"))
    resources = kustomization["resources"]
    assert resources
    for resource in resources:
        assert (DEPLOY / resource).is_file(), resource
    # Every manifest except the placeholder examples (Secret, Ingress) is applied.
    listed = set(resources)
    for path in DEPLOY.glob("*.yaml"):
        if path.name != "kustomization.yaml" and not path.name.endswith(".example.yaml"):
            assert path.name in listed, path.name
    assert {"secret.example.yaml", "ingress.example.yaml"} <= {p.name for p in DEPLOY.iterdir()}
    assert not {name for name in listed if name.endswith(".example.yaml")}


def test_namespace_is_channelkeep(manifests: list) -> None:
    assert "channelkeep" in _of_kind(manifests, "Namespace")
    for filename, doc in manifests:
        if doc.get("kind") not in (None, "Namespace", "Kustomization"):
            assert doc["metadata"].get("namespace") == "channelkeep", filename


def test_configmap_and_secret_keys_are_real_settings(manifests: list) -> None:
    configmaps = _of_kind(manifests, "ConfigMap")
    secrets = _of_kind(manifests, "Secret")
    assert configmaps and secrets
    for doc in [*configmaps.values(), *secrets.values()]:
        keys = set(doc.get("data") or {}) | set(doc.get("stringData") or {})
        unknown = {key.upper() for key in keys} - ALL_SETTING_NAMES
        assert not unknown, f"{doc['metadata']['name']}: {sorted(unknown)}"
    secret_keys = set(secrets["channelkeep-secrets"]["stringData"])
    assert {
        "ADMIN_TOKEN",
        "MONGO_URL",
        "UNSUBSCRIBE_SECRET",
        "WEBHOOK_SECRET_KEYS",
        "SMTP_PASSWORD",
        "PORTAL_SESSION_SECRET",
        "CHECKOUT_TOKEN",
    } <= secret_keys
    for configmap in configmaps.values():
        assert not secret_keys & set(configmap.get("data") or {}), "secret in a ConfigMap"


def _containers(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    pod = deployment["spec"]["template"]["spec"]
    return [*pod.get("initContainers", []), *pod["containers"]]


def test_each_service_has_api_and_worker_deployments(manifests: list) -> None:
    workloads = _workloads(manifests)
    assert set(CONTAINERS) | {"portal-api"} <= set(workloads)
    for name in [*CONTAINERS, "portal-api"]:
        svc, role = service_of(name), name.rpartition("-")[2]
        (container,) = _containers(workloads[name])
        assert container["command"] == ["python", "-m", f"services.{svc}.entrypoints.{role}"]
        assert workloads[name]["kind"] == ("Deployment" if role == "api" else "StatefulSet"), name


def test_workers_take_their_instance_id_from_the_stable_pod_name(manifests: list) -> None:
    services = _of_kind(manifests, "Service")
    for name, workload in _of_kind(manifests, "StatefulSet").items():
        (container,) = _containers(workload)
        env = {entry["name"]: entry for entry in container["env"]}
        field = env["WORKER_INSTANCE_ID"]["valueFrom"]["fieldRef"]["fieldPath"]
        assert field == "metadata.name", name
        # The governing Service exists and is headless.
        governing = services[workload["spec"]["serviceName"]]
        assert governing["spec"]["clusterIP"] == "None", name
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert governing["spec"]["selector"].items() <= labels.items(), name
        assert workload["spec"]["podManagementPolicy"] == "Parallel", name


def test_deployment_env_entries_are_real_settings(manifests: list) -> None:
    configmaps = _of_kind(manifests, "ConfigMap")
    secrets = _of_kind(manifests, "Secret")
    for name, deployment in _workloads(manifests).items():
        svc = service_of(name)
        for container in _containers(deployment):
            env = {entry["name"].upper() for entry in container.get("env", [])}
            unknown = env - SETTING_NAMES[svc]
            assert not unknown, f"{name}: {sorted(unknown)}"
            for entry in container.get("env", []):
                ref = (entry.get("valueFrom") or {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] in secrets, ref
                    assert ref["key"] in secrets[ref["name"]]["stringData"], ref
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    assert source["configMapRef"]["name"] in configmaps
                if "secretRef" in source:
                    assert source["secretRef"]["name"] in secrets


def test_every_deployment_has_probes_and_runs_hardened(manifests: list) -> None:
    deployments = _workloads(manifests)
    assert deployments
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        pod_security = pod.get("securityContext") or {}
        for container in pod["containers"]:
            security = {**pod_security, **(container.get("securityContext") or {})}
            assert security.get("runAsNonRoot") is True, name
            assert security.get("runAsUser") == 10001, name
            assert security.get("readOnlyRootFilesystem") is True, name
            assert security.get("allowPrivilegeEscalation") is False, name
            assert security.get("capabilities", {}).get("drop") == ["ALL"], name
            assert "readinessProbe" in container and "livenessProbe" in container, name
            resources = container.get("resources") or {}
            assert resources.get("requests") and resources.get("limits"), name
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            assert "/tmp" in mounts, name
            emptydirs = {v["name"] for v in pod.get("volumes", []) if "emptyDir" in v}
            assert set(mounts.values()) <= emptydirs, name


def test_api_probes_use_health_endpoints_and_workers_the_heartbeat(manifests: list) -> None:
    for name, deployment in _workloads(manifests).items():
        svc, role = service_of(name), name.rpartition("-")[2]
        (container,) = _containers(deployment)
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        if role == "api":
            port = int(env.get(f"{svc.upper()}_PORT", DEFAULT_PORTS[svc]))
            ports = {p["name"]: p["containerPort"] for p in container["ports"]}
            assert ports["http"] == port, name
            assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name
            assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", name
        else:
            heartbeat = env["WORKER_HEARTBEAT_FILE"]
            command = container["livenessProbe"]["exec"]["command"]
            assert command == ["python", "-m", "chassis.healthcheck", "worker", heartbeat]


def test_api_services_and_autoscalers_target_the_api_deployments(manifests: list) -> None:
    deployments = _of_kind(manifests, "Deployment")
    services = _of_kind(manifests, "Service")
    autoscalers = _of_kind(manifests, "HorizontalPodAutoscaler")
    for svc in APPS:
        name = f"{svc}-api"
        labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        selector = services[name]["spec"]["selector"]
        assert selector.items() <= labels.items(), name
        target = autoscalers[name]["spec"]["scaleTargetRef"]
        assert (target["kind"], target["name"]) == ("Deployment", name)
        # The autoscaler owns the replica count; a fixed one would fight it.
        assert "replicas" not in deployments[name]["spec"], name
