"""Every overlay and component combination builds and validates strictly against Kubernetes 1.32."""

from __future__ import annotations

import json

import jsonschema
import kube_manifests as km
import pytest
from kubernetes_validate import utils as kv

KUBERNETES_VERSION = "1.32.0"


def test_every_component_has_a_test_combination_with_the_base() -> None:
    on_disk = {
        p.name for p in (km.REPO_ROOT / km.KUSTOMIZE_DIR / "components").iterdir() if p.is_dir()
    }
    assert on_disk == set(km.COMPONENTS), "a component was added or removed: update RENDER_CASES"
    for component in on_disk:
        assert (
            km.REPO_ROOT / km.TEST_KUSTOMIZE_DIR / f"base-{component}" / "kustomization.yaml"
        ).is_file()


def test_every_test_kustomization_is_rendered() -> None:
    on_disk = {
        p.parent.name for p in (km.REPO_ROOT / km.TEST_KUSTOMIZE_DIR).glob("*/kustomization.yaml")
    }
    covered = {
        case.path.name for case in km.RENDER_CASES if case.path.parent == km.TEST_KUSTOMIZE_DIR
    }
    assert on_disk == covered


@pytest.mark.parametrize("case", km.RENDER_CASES, ids=lambda c: c.name)
def test_kustomization_builds(case: km.RenderCase, rendered: km.RenderLookup) -> None:
    docs = rendered(case.name)
    assert docs, f"{case.name} rendered nothing"
    ids = [
        f"{d['kind']}/{d['metadata'].get('namespace', '')}/{d['metadata']['name']}" for d in docs
    ]
    assert len(ids) == len(set(ids)), "duplicate objects in the render"


@pytest.mark.parametrize("case", km.RENDER_CASES, ids=lambda c: c.name)
def test_render_validates_strictly_against_kubernetes_1_32(
    case: km.RenderCase, rendered: km.RenderLookup
) -> None:
    """kubernetes-validate's strict 1.32 schemas; KEDA's CRDs against the small schemas in
    kube_manifests.CRD_SCHEMAS. Any other kind without a schema fails."""
    errors: list[str] = []
    seen: set[str] = set()
    for doc in rendered(case.name):
        key = json.dumps(doc, sort_keys=True)
        if key in seen:
            continue
        seen.add(key)
        crd_schema = km.CRD_SCHEMAS.get((doc["apiVersion"], doc["kind"]))
        try:
            if crd_schema is not None:
                jsonschema.validate(doc, crd_schema)
            else:
                kv.validate(doc, KUBERNETES_VERSION, strict=True)
        except (jsonschema.ValidationError, kv.ValidationError) as exc:
            path = ".".join(str(p) for p in exc.path)
            errors.append(f"{km.doc_id(doc)}: {path}: {exc.message}")
        except kv.SchemaNotFoundError as exc:
            errors.append(
                f"{km.doc_id(doc)}: no schema ({exc.message}); a CRD needs one in CRD_SCHEMAS"
            )
    assert not errors, "\n".join(errors)


def test_strict_validation_rejects_an_unknown_field() -> None:
    """Guards the test above: strict mode really rejects what Kubernetes would drop silently."""
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {
                "metadata": {"labels": {"a": "b"}},
                "spec": {"containers": [{"name": "c", "image": "i:1", "readinesProbe": {}}]},
            },
        },
    }
    with pytest.raises(kv.ValidationError):
        kv.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_crd_schemas_reject_an_unknown_field() -> None:
    scaled_object = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "x"},
        "spec": {
            "scaleTargetRef": {"name": "x"},
            "triggers": [{"type": "rabbitmq", "metadata": {}}],
            "maxReplicas": 3,
        },
    }
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(scaled_object, km.CRD_SCHEMAS[("keda.sh/v1alpha1", "ScaledObject")])
