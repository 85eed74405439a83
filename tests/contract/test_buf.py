"""The contracts: lint clean, gen/ fresh, and no breaking change against the v1 baseline."""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.processes import REPO, VENV_BIN

ENV = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
JOBS_PROTO = Path("proto/mp3mesh/jobs/v1/jobs.proto")


def buf(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "buf"), *args],
        cwd=cwd,
        env=ENV,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.fixture
def workspace_copy(tmp_path: Path) -> Path:
    """A throwaway copy of everything buf reads, for edits and regeneration."""
    for name in ("proto", "third_party", "tools"):
        shutil.copytree(REPO / name, tmp_path / name)
    for name in ("buf.yaml", "buf.gen.yaml", "buf.baseline.json"):
        shutil.copy(REPO / name, tmp_path / name)
    (tmp_path / ".venv").symlink_to(VENV_BIN.parent)
    return tmp_path


def differences(left: Path, right: Path) -> list[str]:
    compared = filecmp.dircmp(left, right, ignore=["__pycache__"])
    found = [*compared.left_only, *compared.right_only, *compared.diff_files]
    for name, sub in compared.subdirs.items():
        found += [f"{name}/{item}" for item in differences(Path(sub.left), Path(sub.right))]
    return found


def test_buf_lint_passes() -> None:
    result = buf("lint")
    assert result.returncode == 0, result.stdout + result.stderr


def test_lint_catches_a_violation(workspace_copy: Path) -> None:
    proto = workspace_copy / JOBS_PROTO
    proto.write_text(proto.read_text() + "\nmessage lower_case_name {}\n")
    result = buf("lint", cwd=workspace_copy)
    assert result.returncode != 0 and "lower_case_name" in result.stdout


def test_generated_code_is_fresh(workspace_copy: Path) -> None:
    result = buf("generate", cwd=workspace_copy)
    assert result.returncode == 0, result.stderr
    stale = differences(REPO / "gen", workspace_copy / "gen")
    assert stale == [], f"gen/ is stale, run `make gen`: {stale}"


def test_no_breaking_change_against_the_v1_baseline() -> None:
    result = buf("breaking", "proto", "--against", "buf.baseline.json")
    assert result.returncode == 0, result.stdout + result.stderr


def test_changing_a_field_type_is_caught_as_breaking(workspace_copy: Path) -> None:
    proto = workspace_copy / JOBS_PROTO
    proto.write_text(
        proto.read_text().replace("int32 bitrate_kbps = 6;", "int64 bitrate_kbps = 6;")
    )
    result = buf("breaking", "proto", "--against", "buf.baseline.json", cwd=workspace_copy)
    assert result.returncode != 0
    assert 'changed type from "int32" to "int64"' in result.stdout


def test_removing_a_field_is_caught_as_breaking(workspace_copy: Path) -> None:
    proto = workspace_copy / JOBS_PROTO
    text = proto.read_text()
    assert "  string trace_id = 15;\n" in text
    proto.write_text(text.replace("  string trace_id = 15;\n", ""))
    result = buf("breaking", "proto", "--against", "buf.baseline.json", cwd=workspace_copy)
    assert result.returncode != 0
    assert "deleted" in result.stdout.lower()
