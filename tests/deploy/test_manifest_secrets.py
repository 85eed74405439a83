"""Secrets come from uncommitted env files only, never from a value in the repository."""

from __future__ import annotations

import base64
import functools
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import kube_manifests as km
import pytest
import yaml

SKIPPED_DIRS = (".git/", ".venv/", ".data/", "node_modules/")
MAX_FILE_BYTES = 5 * 1024 * 1024


@functools.lru_cache(maxsize=1)
def repository_text() -> dict[str, str]:
    """Text of every file git tracks or would track (untracked but not ignored)."""
    proc = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=km.REPO_ROOT,
        capture_output=True,
        check=True,
    )
    texts = {}
    for rel in sorted(set(proc.stdout.decode().split("\0")) - {""}):
        path = km.REPO_ROOT / rel
        if (
            rel.startswith(SKIPPED_DIRS)
            or not path.is_file()
            or path.stat().st_size > MAX_FILE_BYTES
        ):
            continue
        data = path.read_bytes()
        if b"\0" not in data:
            texts[rel] = data.decode("utf-8", errors="replace")
    return texts


def secret_values(docs: list[km.Doc]) -> list[tuple[str, str, str]]:
    """(secret, key, decoded value) for every Secret in the render."""
    out = []
    for secret in km.of_kind(docs, "Secret"):
        for key, value in (secret.get("data") or {}).items():
            out.append(
                (
                    secret["metadata"]["name"],
                    key,
                    base64.b64decode(value).decode("utf-8", errors="replace"),
                )
            )
        for key, value in (secret.get("stringData") or {}).items():
            out.append((secret["metadata"]["name"], key, value))
    return out


def generator_env_files() -> list[Path]:
    """Repository-relative paths of the env files the committed secretGenerators read."""
    return sorted(
        target.relative_to(km.REPO_ROOT)
        for target, _ in km.env_files_to_generate(km.REPO_ROOT / km.KUSTOMIZE_DIR)
    )


def test_the_repository_scan_sees_the_committed_examples() -> None:
    """Guards the next test: the scan reads the files a literal secret would hide in."""
    texts = repository_text()
    assert "deploy/kustomize/overlays/minikube/secrets.env.example" in texts
    assert "CHANGE_ME" in texts["deploy/kustomize/overlays/production/secrets.env.example"]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in km.RENDER_CASES])
def test_no_rendered_secret_holds_a_value_from_the_repository(
    case: km.RenderCase, rendered: km.RenderLookup
) -> None:
    values = secret_values(rendered(case.name))
    if case.complete:
        assert values, f"{case.name} should generate its Secrets"
    texts = repository_text()
    leaks = [
        f"{secret}/{key} = value found in {path}"
        for secret, key, value in values
        for path, text in texts.items()
        if not value or value in text
    ]
    assert not leaks, "\n".join(leaks)


def test_secret_generators_read_only_env_files_with_committed_examples() -> None:
    files = generator_env_files()
    assert files, "the overlays should generate their Secrets from env files"
    for path in files:
        assert (km.REPO_ROOT / path.with_name(path.name + ".example")).is_file(), (
            f"{path} has no .example"
        )


def test_secret_env_files_are_ignored_by_git() -> None:
    """The real env files are never committed (.gitignore: deploy/kustomize/overlays/*/*.env)."""
    for path in generator_env_files():
        proc = subprocess.run(["git", "check-ignore", "-q", str(path)], cwd=km.REPO_ROOT)
        assert proc.returncode == 0, f"{path} is not ignored by git: add it to .gitignore"
        tracked = subprocess.run(
            ["git", "ls-files", str(path)], cwd=km.REPO_ROOT, capture_output=True, text=True
        )
        assert not tracked.stdout.strip(), f"{path} is tracked by git"


@pytest.mark.parametrize("overlay", ["minikube", "production"])
def test_secret_examples_list_exactly_the_keys_the_overlay_uses(
    overlay: str, rendered: km.RenderLookup
) -> None:
    docs = rendered(overlay)
    used: dict[str, set[str]] = {}
    required: dict[str, set[str]] = {}
    for workload in km.workloads(docs):
        for _, c in km.all_containers(km.pod_template(workload)["spec"]):
            for env in c.get("env") or []:
                ref = (env.get("valueFrom") or {}).get("secretKeyRef")
                if ref:
                    used.setdefault(ref["name"], set()).add(ref["key"])
                    if not ref.get("optional"):
                        required.setdefault(ref["name"], set()).add(ref["key"])
    for auth in km.of_kind(docs, "TriggerAuthentication"):
        for ref in auth["spec"]["secretTargetRef"]:
            used.setdefault(ref["name"], set()).add(ref["key"])
            required.setdefault(ref["name"], set()).add(ref["key"])
    spec = yaml.safe_load(
        (km.REPO_ROOT / km.KUSTOMIZE_DIR / "overlays" / overlay / "kustomization.yaml").read_text()
    )
    for generator in spec["secretGenerator"]:
        (secret_name,) = [n for n in used if n.startswith(generator["name"] + "-")]
        keys = {
            k
            for env in generator["envs"]
            for k in km.env_keys(
                km.REPO_ROOT / km.KUSTOMIZE_DIR / "overlays" / overlay / f"{env}.example"
            )
        }
        assert required.get(secret_name, set()) <= keys, f"{overlay}: example lacks required keys"
        assert keys <= used[secret_name], (
            f"{overlay}: example lists keys nothing reads: {keys - used[secret_name]}"
        )


def _env(path: Path) -> dict[str, str]:
    return dict(
        line.split("=", 1)
        for line in path.read_text().splitlines()
        if line and not line.startswith("#")
    )


def test_make_secrets_script_writes_matching_random_credentials(tmp_path: Path) -> None:
    script = km.REPO_ROOT / km.KUSTOMIZE_DIR / "overlays/minikube/make-secrets.sh"
    subprocess.run(["sh", str(script), str(tmp_path)], check=True, capture_output=True)
    overlay = script.parent
    app, infra = _env(tmp_path / "secrets.env"), _env(tmp_path / "infra.env")
    assert set(app) == set(km.env_keys(overlay / "secrets.env.example"))
    assert set(infra) == set(km.env_keys(overlay / "infra.env.example"))
    mysql, mongo, amqp = (
        urlsplit(app["MYSQL_URL"]),
        urlsplit(app["MONGO_URI"]),
        urlsplit(app["AMQP_URL"]),
    )
    assert (mysql.username, mysql.password) == (infra["MARIADB_USER"], infra["MARIADB_PASSWORD"])
    assert (mongo.username, mongo.password) == (
        infra["MONGO_ROOT_USERNAME"],
        infra["MONGO_ROOT_PASSWORD"],
    )
    assert (amqp.username, amqp.password) == (infra["RABBITMQ_USER"], infra["RABBITMQ_PASSWORD"])
    assert len(app["JWT_SECRET"]) >= 32
    again = subprocess.run(["sh", str(script), str(tmp_path)], capture_output=True, text=True)
    assert again.returncode != 0 and "exists" in again.stderr, (
        "it must not overwrite existing secrets"
    )
