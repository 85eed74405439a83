"""Ruff and mypy are part of the test run, so CI refuses code that fails them."""

from __future__ import annotations

import subprocess

from tests.fixtures.processes import REPO, VENV_BIN


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, check=False, timeout=600
    )


def test_ruff_finds_nothing() -> None:
    result = run(str(VENV_BIN / "ruff"), "check", ".")
    assert result.returncode == 0, result.stdout


def test_mypy_strict_finds_nothing() -> None:
    result = run(str(VENV_BIN / "mypy"), ".")
    assert result.returncode == 0, result.stdout
