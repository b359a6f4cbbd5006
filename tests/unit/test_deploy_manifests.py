"""The deployment files read as a machine reads them: the image, compose and Kubernetes.

There is no Docker engine or cluster here, so the files are parsed (PyYAML) and
checked against the code: every service is there with an image, a command that
names a real module, the settings the code reads (the names are derived from the
pydantic Settings models, so they stay right when settings are added), its
dependencies, and every file it mounts. The Kubernetes manifests are validated
against the Kubernetes OpenAPI schemas (kubernetes-validate, strict).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml
from pydantic_settings import BaseSettings

from rosterflow.settings import REPO_ROOT, Settings
from rosterflow.topics import SERVICES

COMPOSE_DIR = REPO_ROOT / "deploy" / "compose"
K8S_BASE = REPO_ROOT / "deploy" / "k8s" / "base"
KUBERNETES_VERSION = "1.33.0"

# Variables read outside the Settings models, with the file that reads them.
OTHER_VARIABLES = {"ROSTERFLOW_DEMO_DIR": REPO_ROOT / "libs" / "rosterflow" / "demo_data.py"}
# What each service must be told to reach its neighbours.
REQUIRED = {
    "ROSTERFLOW_KAFKA_BOOTSTRAP_SERVERS",
    "ROSTERFLOW_DB_DSN",
    "ROSTERFLOW_STORAGE_URI",
    "ROSTERFLOW_STORAGE_S3_ENDPOINT",
    "ROSTERFLOW_STORAGE_S3_ACCESS_KEY_ID",
    "ROSTERFLOW_STORAGE_S3_SECRET_ACCESS_KEY",
    "ROSTERFLOW_SMTP_HOST",
    "ROSTERFLOW_SMTP_PORT",
}


def settings_variables() -> set[str]:
    """Every ROSTERFLOW_* variable the Settings models read: env_prefix + field name."""
    names = set()
    for field in Settings.model_fields.values():
        model = field.annotation
        assert isinstance(model, type), field
        assert issubclass(model, BaseSettings), field
        prefix = str(model.model_config.get("env_prefix", ""))
        names |= {(prefix + name).upper() for name in model.model_fields}
    return names


def known_variables() -> set[str]:
    return settings_variables() | set(OTHER_VARIABLES)


def module_file(module: str) -> Path:
    """The source file `python -m module` runs, in this repository."""
    parts = module.split(".")
    root = REPO_ROOT / "libs" if parts[0] == "rosterflow" else REPO_ROOT
    path = root.joinpath(*parts)
    return path / "__main__.py" if path.is_dir() else path.with_suffix(".py")


def assert_exists(path: Path) -> None:
    assert path.exists(), f"{path.relative_to(REPO_ROOT)} is referenced but does not exist"


def test_the_derived_settings_names_are_the_ones_the_models_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    names = settings_variables()
    assert {"ROSTERFLOW_KAFKA_BOOTSTRAP_SERVERS", "ROSTERFLOW_STORAGE_S3_ENDPOINT"} <= names
    monkeypatch.setenv("ROSTERFLOW_STORAGE_S3_ENDPOINT", "http://minio:9000")
    monkeypatch.setenv("ROSTERFLOW_SMTP_PORT", "1025")
    settings = Settings()
    assert settings.storage.s3_endpoint == "http://minio:9000"
    assert settings.smtp.port == 1025
    for name, path in OTHER_VARIABLES.items():
        assert name in path.read_text(), f"{name} is not read by {path}"


# --- the image ---------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (REPO_ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


def test_the_image_is_multi_stage_from_the_lock_file_and_runs_as_a_user() -> None:
    instructions = dockerfile_instructions()
    stages = [arg for op, arg in instructions if op == "FROM"]
    assert len(stages) >= 2
    runs = " ".join(arg for op, arg in instructions if op == "RUN")
    makefile = (REPO_ROOT / "Makefile").read_text()
    uv_version = re.search(r"^UV_VER\s*:=\s*(\S+)", makefile, re.M)
    assert uv_version is not None
    assert f"uv=={uv_version[1]}" in runs, "the image uses the uv the Makefile pins"
    assert "uv sync --frozen --no-dev" in runs
    copies = [arg for op, arg in instructions if op == "COPY"]
    assert any("uv.lock" in arg for arg in copies)
    # The runtime stage takes the environment from the build stage, not the sources.
    final = [arg for op, arg in instructions[[op for op, _ in instructions].index("FROM", 1) :]]
    assert any("--from=build" in arg and "/app/.venv" in arg for arg in final)
    users = [arg for op, arg in instructions if op == "USER"]
    assert users
    assert users[-1].split(":")[0] not in ("root", "0")
    ignore = (REPO_ROOT / ".dockerignore").read_text().split()
    for needed in ("pyproject.toml", "uv.lock", "libs/", "services/"):
        assert f"!{needed}" in ignore
    wheel = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["build"]
    assert set(wheel["targets"]["wheel"]["packages"]) == {"libs/rosterflow", "services"}


# --- compose -----------------------------------------------------------------------------


def interpolate(text: str) -> str:
    """Compose's ${NAME:-default} with nothing set: every variable must have a default."""
    bare = re.findall(r"\$\{(\w+)\}", text)
    assert not bare, f"compose variables without a default: {bare}"
    return re.sub(r"\$\{\w+:-([^}]*)\}", lambda m: m[1], text)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(interpolate((COMPOSE_DIR / "compose.yaml").read_text()))
    assert isinstance(loaded, dict)
    return loaded


def rosterflow_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: spec
        for name, spec in compose["services"].items()
        if spec.get("image", "").startswith("rosterflow")
    }


def test_compose_has_the_infrastructure_every_service_and_the_demo_job(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    for name in ("kafka", "postgres", "minio", "mailpit", "prometheus", "grafana"):
        assert name in services, name
    kafka_env = services["kafka"]["environment"]
    assert kafka_env["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, no ZooKeeper
    ours = rosterflow_services(compose)
    assert set(SERVICES) | {"demo-data"} <= set(ours)
    assert ours["demo-data"]["restart"] == "no"
    for name, spec in services.items():
        assert spec.get("image") or spec.get("build"), f"{name} has no image"
        for port in spec.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def test_every_rosterflow_container_is_built_here_and_runs_a_real_module(
    compose: dict[str, Any],
) -> None:
    for name, spec in rosterflow_services(compose).items():
        build = spec["build"]
        context = (COMPOSE_DIR / build["context"]).resolve()
        assert context == REPO_ROOT
        assert (context / build["dockerfile"]).is_file()
        command = spec["command"]
        assert command[:2] == ["python", "-m"], name
        if name in SERVICES:
            assert command[2] == f"services.{name}"
        assert module_file(command[2]).is_file(), f"{name}: no module {command[2]}"


def test_every_variable_compose_sets_is_one_the_code_reads(compose: dict[str, Any]) -> None:
    known = known_variables()
    for name, spec in rosterflow_services(compose).items():
        env = spec["environment"]
        unknown = sorted(k for k in env if k not in known)
        assert not unknown, f"{name} sets variables nothing reads: {unknown}"
        missing = sorted(REQUIRED - set(env))
        assert not missing, f"{name} lacks {missing}"


def test_the_addresses_in_the_environment_are_compose_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, spec in rosterflow_services(compose).items():
        env = spec["environment"]
        hosts = {
            env["ROSTERFLOW_KAFKA_BOOTSTRAP_SERVERS"].split(":")[0],
            urlsplit(env["ROSTERFLOW_DB_DSN"]).hostname,
            urlsplit(env["ROSTERFLOW_STORAGE_S3_ENDPOINT"]).hostname,
            env["ROSTERFLOW_SMTP_HOST"],
        }
        assert hosts <= set(services), f"{name} points at {hosts - set(services)}"
        assert urlsplit(env["ROSTERFLOW_STORAGE_URI"]).scheme == "s3"
    minio = services["minio"]["environment"]
    env = services["ingest"]["environment"]
    assert env["ROSTERFLOW_STORAGE_S3_ACCESS_KEY_ID"] == minio["MINIO_ROOT_USER"]
    assert env["ROSTERFLOW_STORAGE_S3_SECRET_ACCESS_KEY"] == minio["MINIO_ROOT_PASSWORD"]
    postgres = services["postgres"]["environment"]
    dsn = urlsplit(env["ROSTERFLOW_DB_DSN"])
    assert dsn.username == postgres["POSTGRES_USER"]
    assert dsn.password == postgres["POSTGRES_PASSWORD"]
    assert dsn.path == "/" + postgres["POSTGRES_DB"]


def test_dependencies_exist_and_their_conditions_can_be_met(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, spec in services.items():
        depends = spec.get("depends_on", {})
        targets = depends if isinstance(depends, dict) else {t: {} for t in depends}
        for target, rule in targets.items():
            assert target in services, f"{name} depends on unknown {target}"
            condition = rule.get("condition", "service_started")
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{target} has no healthcheck"
            if condition == "service_completed_successfully":
                assert services[target].get("restart") == "no", target
    for name in SERVICES:
        depends = services[name]["depends_on"]
        assert depends["kafka"]["condition"] == "service_healthy"
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["minio-bucket"]["condition"] == "service_completed_successfully"
    demo = services["demo-data"]["depends_on"]
    assert {n: demo[n]["condition"] for n in SERVICES} == dict.fromkeys(SERVICES, "service_healthy")


def test_health_checks_and_scrapes_use_the_agreed_ports_and_paths(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    prometheus = yaml.safe_load((COMPOSE_DIR / "prometheus" / "prometheus.yml").read_text())
    targets = {
        job["job_name"]: [t for c in job["static_configs"] for t in c["targets"]]
        for job in prometheus["scrape_configs"]
    }
    for name in SERVICES:
        env = services[name]["environment"]
        port = env["ROSTERFLOW_OPS_PORT"]
        probe = " ".join(services[name]["healthcheck"]["test"])
        assert f"http://127.0.0.1:{port}/ready" in probe, name
        assert targets[f"rosterflow-{name}"] == [f"{name}:{port}"]
    # The service-down alert selects scrape jobs by name: every job must match it.
    alerts = (REPO_ROOT / "deploy" / "observability" / "prometheus" / "alerts.yml").read_text()
    selector = re.search(r'up\{job=~"([^"]+)"\}', alerts)
    assert selector is not None, "the service-down alert no longer selects jobs by name"
    for job in prometheus["scrape_configs"]:
        assert job.get("metrics_path", "/metrics") == "/metrics"
        assert re.fullmatch(selector.group(1), job["job_name"]), job["job_name"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in services["prometheus"]["volumes"]}
    assert [Path(f).name for f in prometheus["rule_files"]] == ["alerts.yml", "slos.yml"]
    for rule_file in prometheus["rule_files"]:
        assert mounts[rule_file].endswith("observability/prometheus/" + Path(rule_file).name)


def test_every_file_compose_mounts_exists(compose: dict[str, Any]) -> None:
    for name, spec in compose["services"].items():
        for volume in spec.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert_exists((COMPOSE_DIR / source).resolve())
            else:
                assert source in compose["volumes"], f"{name}: unknown volume {source}"
    grafana = {v.split(":")[1]: v for v in compose["services"]["grafana"]["volumes"]}
    provider = yaml.safe_load(
        (COMPOSE_DIR / "grafana" / "provisioning" / "dashboards" / "rosterflow.yml").read_text()
    )
    dashboards = provider["providers"][0]["options"]["path"]
    assert grafana[dashboards].startswith("../observability/grafana/dashboards:")
    assert_exists(REPO_ROOT / "deploy" / "observability" / "grafana" / "dashboards")


def test_the_demo_files_are_built_from_skatteverket_test_numbers() -> None:
    from rosterflow.testing import sample_roster, school_age_numbers

    numbers = school_age_numbers()
    roster = sample_roster(300, numbers, invalid=6)
    demo = COMPOSE_DIR / "demo"
    assert (demo / "roster.csv").read_bytes() == roster.to_csv().encode("cp1252")
    assert (demo / "leavers.txt").read_text().split() == numbers[306:326]


# --- Kubernetes --------------------------------------------------------------------------


def k8s_documents() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((K8S_BASE / "kustomization.yaml").read_text())
    documents = []
    for resource in kustomization["resources"]:
        path = K8S_BASE / resource
        assert path.is_file(), f"kustomization lists missing {resource}"
        documents += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return documents


def by_kind(documents: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in documents if d["kind"] == kind}


def test_every_manifest_is_valid_against_the_kubernetes_schemas() -> None:
    documents = k8s_documents()
    assert len(documents) >= 2 * len(SERVICES)
    for document in documents:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_the_validator_rejects_a_broken_manifest() -> None:
    deployment = by_kind(k8s_documents(), "Deployment")["rosterflow-validator"]
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["pth"] = "/"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_each_service_is_a_deployment_with_probes_resources_and_a_budget() -> None:
    documents = k8s_documents()
    deployments = by_kind(documents, "Deployment")
    budgets = by_kind(documents, "PodDisruptionBudget")
    config = by_kind(documents, "ConfigMap")["rosterflow-config"]["data"]
    partitions = int(config["ROSTERFLOW_KAFKA_PARTITIONS"])
    for name in SERVICES:
        deployment = deployments[f"rosterflow-{name}"]
        spec = deployment["spec"]
        assert 1 <= spec["replicas"] <= partitions, f"{name}: replicas beyond the partitions"
        pod = spec["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        (container,) = pod["containers"]
        assert container["command"] == ["python", "-m", f"services.{name}"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        expected_port = int(config["ROSTERFLOW_OPS_PORT"])
        probes = {
            kind: (container[kind]["httpGet"]["path"], ports[container[kind]["httpGet"]["port"]])
            for kind in ("startupProbe", "livenessProbe", "readinessProbe")
        }
        assert probes == {
            "startupProbe": ("/health", expected_port),
            "livenessProbe": ("/health", expected_port),
            "readinessProbe": ("/ready", expected_port),
        }
        resources = container["resources"]
        assert {"cpu", "memory"} <= set(resources["requests"])
        assert "memory" in resources["limits"]
        labels = spec["template"]["metadata"]["labels"]
        assert spec["selector"]["matchLabels"].items() <= labels.items()
        budget = budgets[f"rosterflow-{name}"]["spec"]
        assert budget["selector"]["matchLabels"].items() <= labels.items()
        assert budget.get("maxUnavailable") == 1 or budget.get("minAvailable") == 1


def test_configuration_and_secrets_are_referenced_and_named_as_the_code_reads() -> None:
    documents = k8s_documents()
    config_maps = by_kind(documents, "ConfigMap")
    secrets = by_kind(documents, "Secret")
    known = known_variables()
    for name, config_map in config_maps.items():
        unknown = sorted(set(config_map["data"]) - known)
        assert not unknown, f"ConfigMap {name} has variables nothing reads: {unknown}"
    environment_secrets = secrets["rosterflow-secrets"]["stringData"]
    assert not sorted(set(environment_secrets) - known)
    for name, deployment in by_kind(documents, "Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        given: set[str] = set()
        for source in container["envFrom"]:
            if "configMapRef" in source:
                given |= set(config_maps[source["configMapRef"]["name"]]["data"])
            else:
                given |= set(secrets[source["secretRef"]["name"]]["stringData"])
        missing = sorted(REQUIRED - given)
        assert not missing, f"{name} lacks {missing}"
        for volume in pod.get("volumes", []):
            if "secret" in volume:
                assert volume["secret"]["secretName"] in secrets
    # The secrets the issue names: SMTP, the JWT key, the database, S3.
    assert {
        "ROSTERFLOW_SMTP_PASSWORD",
        "ROSTERFLOW_DB_DSN",
        "ROSTERFLOW_STORAGE_S3_SECRET_ACCESS_KEY",
    } <= set(environment_secrets)
    ingest = by_kind(documents, "Deployment")["rosterflow-ingest"]["spec"]["template"]["spec"]
    key_file = config_maps["rosterflow-auth"]["data"]["ROSTERFLOW_AUTH_RS256_PUBLIC_KEY_FILE"]
    mounts = {m["name"]: m["mountPath"] for m in ingest["containers"][0]["volumeMounts"]}
    jwt_volume = next(v for v in ingest["volumes"] if v.get("secret", {}).get("secretName"))
    key = Path(key_file)
    assert mounts[jwt_volume["name"]] == str(key.parent)
    assert key.name in secrets[jwt_volume["secret"]["secretName"]]["stringData"]
