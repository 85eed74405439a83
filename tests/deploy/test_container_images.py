"""The Dockerfile, .dockerignore and `make images`, checked without a Docker engine."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import kube_manifests as km
import pytest

DOCKERFILE = km.REPO_ROOT / "Dockerfile"
IMAGES_MK = km.REPO_ROOT / "mk" / "images.mk"
DIGEST_PINNED_BASE = re.compile(r"^python:3\.11-slim-bookworm@sha256:[0-9a-f]{64}$")


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def parse_dockerfile(text: str) -> tuple[dict[str, str], list[Stage]]:
    """(global ARG defaults, stages) from a Dockerfile; enough of the syntax for these checks."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or not stripped:
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in lines:
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            parts = rest.split()
            stages.append(
                Stage(parts[0], parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None)
            )
        elif keyword == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name] = default
        elif stages:
            stages[-1].instructions.append((keyword, rest))
    return args, stages


@pytest.fixture(scope="module")
def dockerfile() -> tuple[dict[str, str], dict[str, Stage]]:
    args, stages = parse_dockerfile(DOCKERFILE.read_text())
    named = {s.name: s for s in stages if s.name}
    assert len(named) == len(stages), "every stage should be named"
    return args, named


def _lineage(stages: dict[str, Stage], name: str) -> list[Stage]:
    chain = [stages[name]]
    while chain[-1].base in stages:
        chain.append(stages[chain[-1].base])
    return chain


def test_base_image_is_python_3_11_slim_bookworm_pinned_by_digest(
    dockerfile: tuple[dict[str, str], dict[str, Stage]],
) -> None:
    args, stages = dockerfile
    assert DIGEST_PINNED_BASE.match(args.get("PYTHON_IMAGE", "")), (
        "ARG PYTHON_IMAGE must pin a digest"
    )
    for name, stage in stages.items():
        assert stage.base == "${PYTHON_IMAGE}" or stage.base in stages, (
            f"stage {name} starts from {stage.base}"
        )


@pytest.mark.parametrize("service", list(km.SERVICES))
def test_each_service_has_a_target_running_its_package(
    service: str, dockerfile: tuple[dict[str, str], dict[str, Stage]]
) -> None:
    _, stages = dockerfile
    package, grpc_port, http_port = km.SERVICES[service]
    assert service in stages, f"no build target {service}"
    (entrypoint,) = stages[service].all("ENTRYPOINT")
    assert json.loads(entrypoint)[-3:] == ["python", "-m", package], (
        "exec-form ENTRYPOINT running python -m <package>"
    )
    exposed = {int(p) for e in stages[service].all("EXPOSE") for p in e.split()}
    assert exposed == {grpc_port} | ({http_port} if http_port else set())


@pytest.mark.parametrize("service", list(km.SERVICES))
def test_service_images_run_as_uid_10001_read_only_friendly(
    service: str, dockerfile: tuple[dict[str, str], dict[str, Stage]]
) -> None:
    _, stages = dockerfile
    lineage = _lineage(stages, service)
    users = [u for stage in lineage for u in stage.all("USER")]
    assert users and users[0].split(":")[0] == "10001", (
        "numeric non-root USER 10001 (runAsNonRoot needs a number)"
    )
    env = " ".join(e for stage in lineage for e in stage.all("ENV"))
    for setting in ("PYTHONDONTWRITEBYTECODE=1", "HOME=/tmp", "TMPDIR=/tmp"):
        assert setting in env
    runs = [r for stage in lineage for r in stage.all("RUN")]
    lame = [r for r in runs if "libmp3lame0" in r]
    assert lame and "--no-install-recommends" in lame[0] and "rm -rf /var/lib/apt/lists" in lame[0]
    copies = [c for stage in lineage for c in stage.all("COPY")]
    assert all(c.startswith("--from=") for c in copies), (
        "the runtime takes only the built virtualenv"
    )


def test_dependencies_install_from_the_lock_before_the_source(
    dockerfile: tuple[dict[str, str], dict[str, Stage]],
) -> None:
    _, stages = dockerfile
    sources = {
        c.split()[0].removeprefix("--from=")
        for s in stages.values()
        for c in s.all("COPY")
        if c.startswith("--from=")
    }
    (build_name,) = sources
    steps = [
        f"{kw} {args}" for kw, args in stages[build_name].instructions if kw in ("COPY", "RUN")
    ]
    lock = next(i for i, s in enumerate(steps) if s.startswith("COPY requirements.lock"))
    # runtime dependencies only (not the dev tools), pinned by the lock used as constraints
    deps = next(i for i, s in enumerate(steps) if "pip install -c requirements.lock" in s)
    source = next(i for i, s in enumerate(steps) if s.startswith("COPY . "))
    project = next(i for i, s in enumerate(steps) if "pip install --no-deps ." in s)
    assert lock < deps < source < project


def test_dockerignore_keeps_tests_data_and_secrets_out() -> None:
    entries = {line.strip() for line in (km.REPO_ROOT / ".dockerignore").read_text().splitlines()}
    assert {".git", ".venv", ".data", "bench", "deploy", "tests"} <= entries
    assert "**/*.env" in entries


def _fake_tool(bin_dir: Path, name: str, body: str) -> None:
    tool = bin_dir / name
    tool.write_text(f"#!/bin/sh\n{body}\n")
    tool.chmod(0o755)


def _make_images(bin_dir: Path, log: Path) -> subprocess.CompletedProcess[str]:
    make = shutil.which("make")
    if make is None:
        pytest.fail("make is not on PATH")
    env = {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin", "LOG": str(log)}
    env.pop("MAKEFLAGS", None)
    return subprocess.run(
        [
            make,
            "--no-print-directory",
            "-f",
            str(IMAGES_MK),
            "images",
            "DOCKER=docker",
            "MINIKUBE=minikube",
        ],
        cwd=km.REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _logged(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def test_make_images_builds_the_four_targets_with_docker(tmp_path: Path) -> None:
    _fake_tool(tmp_path, "docker", 'echo "docker $*" >> "$LOG"')
    _fake_tool(tmp_path, "minikube", 'echo "minikube $*" >> "$LOG"')
    proc = _make_images(tmp_path, tmp_path / "log")
    assert proc.returncode == 0, proc.stderr
    builds = [line for line in _logged(tmp_path / "log") if line.startswith("docker build")]
    assert builds == [
        f"docker build --target {s} -t mp3mesh/{s}:dev {km.REPO_ROOT}"
        for s in ("auth", "gateway", "converter", "notifier")
    ]


def test_make_images_falls_back_to_minikube_image_build(tmp_path: Path) -> None:
    _fake_tool(tmp_path, "docker", 'echo "docker $*" >> "$LOG"; exit 1')
    _fake_tool(tmp_path, "minikube", 'echo "minikube $*" >> "$LOG"')
    proc = _make_images(tmp_path, tmp_path / "log")
    assert proc.returncode == 0, proc.stderr
    builds = [line for line in _logged(tmp_path / "log") if line.startswith("minikube")]
    assert builds == [
        f"minikube image build --build-opt=target={s} -t mp3mesh/{s}:dev {km.REPO_ROOT}"
        for s in ("auth", "gateway", "converter", "notifier")
    ]


def test_make_images_fails_with_one_clear_line_without_docker_or_minikube(tmp_path: Path) -> None:
    _fake_tool(tmp_path, "docker", "exit 1")
    proc = _make_images(tmp_path, tmp_path / "log")
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.startswith("images:")]
    assert len(lines) == 1 and "docker" in lines[0].lower() and "minikube" in lines[0]
