"""Fixtures for the deploy tests: every kustomization rendered once per session.

The kustomizations are copied to a temporary directory where each secretGenerator's env file
is written with random values (keys from the committed `.example` beside it), then rendered
with `kubectl kustomize`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import kube_manifests as km

# Let `<package>.config` be imported from a source checkout that is not pip-installed; an
# installed copy still wins, since the repository root goes last.
if str(km.REPO_ROOT) not in sys.path:
    sys.path.append(str(km.REPO_ROOT))


@pytest.fixture(scope="session")
def render_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return km.prepare_tree(tmp_path_factory.mktemp("kustomize"))


@pytest.fixture(scope="session")
def renders(render_tree: Path) -> dict[str, list[km.Doc] | AssertionError]:
    return km.render_all(render_tree)


@pytest.fixture
def rendered(renders: dict[str, list[km.Doc] | AssertionError]) -> km.RenderLookup:
    """rendered(case_name) -> the documents of that render (fails the test if it did not build)."""

    def lookup(name: str) -> list[km.Doc]:
        result = renders[name]
        if isinstance(result, AssertionError):
            pytest.fail(f"{name} does not build: {result}")
        return result

    return lookup
