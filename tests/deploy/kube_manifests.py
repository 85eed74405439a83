"""Rendering and reading the Kustomize output for the deploy tests.

Everything here works on plain dicts parsed from `kubectl kustomize` output; nothing talks to
a cluster.
"""

from __future__ import annotations

import ipaddress
import secrets
import shutil
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
KUSTOMIZE_DIR = Path("deploy/kustomize")
TEST_KUSTOMIZE_DIR = Path("tests/deploy/kustomize")
COMPONENTS = ("infra", "tracing", "ingress", "autoscaling", "networkpolicies")
NAMESPACE = "mp3mesh"

Doc = dict[str, Any]
RenderLookup = Callable[[str], list[Doc]]

# The four services: Deployment name -> (Python package, gRPC port, HTTP port or None).
SERVICES: dict[str, tuple[str, int, int | None]] = {
    "auth": ("auth_svc", 50051, None),
    "gateway": ("gateway_svc", 50050, 8080),
    "converter": ("converter_svc", 50052, None),
    "notifier": ("notifier_svc", 50053, None),
}


@dataclass(frozen=True)
class RenderCase:
    """One kustomization that must build: its path, and the components it contains."""

    name: str
    path: Path
    components: frozenset[str]
    overlay: str | None = None

    @property
    def complete(self) -> bool:
        """An overlay (or one extended by tests): every Secret it references is generated."""
        return self.overlay is not None


def _combo(component: str) -> RenderCase:
    return RenderCase(
        f"base+{component}", TEST_KUSTOMIZE_DIR / f"base-{component}", frozenset({component})
    )


MINIKUBE_COMPONENTS = frozenset({"infra", "tracing", "ingress"})
PRODUCTION_COMPONENTS = frozenset({"ingress", "autoscaling", "networkpolicies"})

RENDER_CASES: tuple[RenderCase, ...] = (
    RenderCase("base", KUSTOMIZE_DIR / "base", frozenset()),
    *(_combo(c) for c in COMPONENTS),
    RenderCase(
        "base+all-components", TEST_KUSTOMIZE_DIR / "base-all-components", frozenset(COMPONENTS)
    ),
    RenderCase("minikube", KUSTOMIZE_DIR / "overlays/minikube", MINIKUBE_COMPONENTS, "minikube"),
    RenderCase(
        "production", KUSTOMIZE_DIR / "overlays/production", PRODUCTION_COMPONENTS, "production"
    ),
    RenderCase(
        "minikube+networkpolicies",
        TEST_KUSTOMIZE_DIR / "minikube-networkpolicies",
        MINIKUBE_COMPONENTS | {"networkpolicies"},
        "minikube",
    ),
    RenderCase(
        "production+tracing",
        TEST_KUSTOMIZE_DIR / "production-tracing",
        PRODUCTION_COMPONENTS | {"tracing"},
        "production",
    ),
)
CASES_BY_NAME = {case.name: case for case in RENDER_CASES}


# ---------------------------------------------------------------------------------------------
# Rendering


def env_files_to_generate(tree: Path) -> Iterator[tuple[Path, Path]]:
    """(env file to write, its committed .example) for every secretGenerator in the tree."""
    for kustomization in sorted(tree.rglob("kustomization.yaml")):
        spec = yaml.safe_load(kustomization.read_text()) or {}
        for generator in spec.get("secretGenerator") or []:
            for env in generator.get("envs") or []:
                target = kustomization.parent / env
                yield target, target.with_name(target.name + ".example")


def env_keys(path: Path) -> list[str]:
    """The keys of a KEY=VALUE env file, comments and blank lines skipped."""
    keys = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keys.append(line.split("=", 1)[0])
    return keys


def prepare_tree(dest: Path) -> Path:
    """Copy the kustomizations to dest and write every secret env file with random values.

    The real env files are never committed; the random values let the tests prove that no
    rendered Secret carries a value that is in the repository.
    """
    for rel in (KUSTOMIZE_DIR, TEST_KUSTOMIZE_DIR):
        shutil.copytree(
            REPO_ROOT / rel,
            dest / rel,
            ignore=shutil.ignore_patterns("secrets.env", "infra.env", "__pycache__"),
        )
    for target, example in env_files_to_generate(dest):
        if not example.is_file():
            raise AssertionError(
                f"{target.relative_to(dest)} has no committed {example.name} listing its keys"
            )
        target.write_text("".join(f"{key}={secrets.token_hex(20)}\n" for key in env_keys(example)))
    return dest


def kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        raise AssertionError("kubectl is not on PATH: the deploy tests need `kubectl kustomize`")
    return path


def kustomize(path: Path) -> list[Doc]:
    proc = subprocess.run(
        [kubectl(), "kustomize", str(path)], capture_output=True, text=True, timeout=120
    )
    if proc.returncode != 0:
        raise AssertionError(f"kubectl kustomize {path} failed:\n{proc.stderr}")
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


def render_all(
    tree: Path, cases: Sequence[RenderCase] = RENDER_CASES
) -> dict[str, list[Doc] | AssertionError]:
    """Render every case (in parallel); a failed build is returned as its error."""

    def one(case: RenderCase) -> list[Doc] | AssertionError:
        try:
            return kustomize(tree / case.path)
        except AssertionError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip((c.name for c in cases), pool.map(one, cases), strict=True))


# ---------------------------------------------------------------------------------------------
# Reading


def of_kind(docs: Sequence[Doc], kind: str) -> list[Doc]:
    return [d for d in docs if d.get("kind") == kind]


def named(docs: Sequence[Doc], kind: str, name: str) -> Doc | None:
    return next((d for d in of_kind(docs, kind) if d["metadata"]["name"] == name), None)


def doc_id(doc: Doc) -> str:
    return f"{doc['kind']}/{doc['metadata']['name']}"


WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob")


def pod_template(doc: Doc) -> Doc:
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]
    return doc["spec"]["template"]


def workloads(docs: Sequence[Doc]) -> list[Doc]:
    return [d for d in docs if d.get("kind") in WORKLOAD_KINDS]


def all_containers(pod_spec: Doc) -> list[tuple[str, Doc]]:
    """(kind, container) for init containers and containers."""
    return [("initContainer", c) for c in pod_spec.get("initContainers") or []] + [
        ("container", c) for c in pod_spec.get("containers") or []
    ]


def app_deployment(docs: Sequence[Doc], service: str) -> Doc:
    deployment = named(docs, "Deployment", service)
    assert deployment is not None, f"Deployment/{service} missing from the render"
    return deployment


def main_container(deployment: Doc) -> Doc:
    containers = pod_template(deployment)["spec"]["containers"]
    name = deployment["metadata"]["name"]
    matching = [c for c in containers if c["name"] == name]
    assert matching, f"Deployment/{name} has no container named {name}"
    return matching[0]


def env_map(container: Doc) -> dict[str, Doc]:
    return {e["name"]: e for e in container.get("env") or []}


def config_data(docs: Sequence[Doc]) -> dict[str, str]:
    """The data of the settings ConfigMap (generated with a hash suffix)."""
    maps = [
        d for d in of_kind(docs, "ConfigMap") if d["metadata"]["name"].startswith("mp3mesh-config")
    ]
    assert len(maps) == 1, (
        f"expected one mp3mesh-config ConfigMap, found {[doc_id(m) for m in maps]}"
    )
    return dict(maps[0].get("data") or {})


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Kubernetes LabelSelector semantics; an empty selector matches everything."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


# ---------------------------------------------------------------------------------------------
# NetworkPolicy evaluation (the subset of the semantics the manifests use: pod, namespace and
# ipBlock peers, numeric and named ports). ipBlocks are taken to match addresses outside the
# cluster only, as the NetworkPolicy API recommends.


@dataclass(frozen=True)
class Pod:
    name: str
    namespace: str
    labels: Mapping[str, str]
    ports: Mapping[str, int] = field(default_factory=dict)

    @property
    def namespace_labels(self) -> dict[str, str]:
        return {"kubernetes.io/metadata.name": self.namespace}


@dataclass(frozen=True)
class External:
    ip: str


Peer = Pod | External


def pods_of(docs: Sequence[Doc]) -> list[Pod]:
    pods = []
    for w in workloads(docs):
        template = pod_template(w)
        ports = {
            p["name"]: p["containerPort"]
            for _, c in all_containers(template["spec"])
            for p in c.get("ports") or []
            if "name" in p
        }
        pods.append(
            Pod(
                w["metadata"]["name"],
                w["metadata"].get("namespace", "default"),
                template["metadata"]["labels"],
                ports,
            )
        )
    return pods


def _policy_types(policy: Doc) -> list[str]:
    spec = policy["spec"]
    if "policyTypes" in spec:
        return list(spec["policyTypes"])
    return ["Ingress", "Egress"] if "egress" in spec else ["Ingress"]


def _selects(policy: Doc, pod: Pod) -> bool:
    return policy["metadata"].get("namespace", "default") == pod.namespace and selector_matches(
        policy["spec"].get("podSelector", {}), pod.labels
    )


def _peer_matches(policy_ns: str, peer: Doc, other: Peer) -> bool:
    if "ipBlock" in peer:
        if not isinstance(other, External):
            return False
        address = ipaddress.ip_address(other.ip)
        block = ipaddress.ip_network(peer["ipBlock"]["cidr"])
        if address.version != block.version or address not in block:
            return False
        return not any(
            address.version == ipaddress.ip_network(e).version
            and address in ipaddress.ip_network(e)
            for e in peer["ipBlock"].get("except") or []
        )
    if not isinstance(other, Pod):
        return False
    if "namespaceSelector" in peer:
        if not selector_matches(peer["namespaceSelector"], other.namespace_labels):
            return False
    elif other.namespace != policy_ns:
        return False
    return "podSelector" not in peer or selector_matches(peer["podSelector"], other.labels)


def _port_matches(rule_ports: list[Doc] | None, port: int, protocol: str, target: Peer) -> bool:
    if not rule_ports:
        return True
    for rp in rule_ports:
        if rp.get("protocol", "TCP") != protocol:
            continue
        if "port" not in rp:
            return True
        value = rp["port"]
        if isinstance(value, str):
            if isinstance(target, Pod) and target.ports.get(value) == port:
                return True
            continue
        if value <= port <= int(rp.get("endPort") or value):
            return True
    return False


def _direction_allows(
    policies: Sequence[Doc],
    subject: Pod,
    other: Peer,
    port: int,
    protocol: str,
    direction: str,
    target: Peer,
) -> bool:
    relevant = [p for p in policies if _selects(p, subject) and direction in _policy_types(p)]
    if not relevant:
        return True
    key, peers_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
    for policy in relevant:
        ns = policy["metadata"].get("namespace", "default")
        for rule in policy["spec"].get(key) or []:
            peers = rule.get(peers_key)
            if peers and not any(_peer_matches(ns, peer, other) for peer in peers):
                continue
            if _port_matches(rule.get("ports"), port, protocol, target):
                return True
    return False


def can_connect(
    policies: Sequence[Doc], src: Peer, dst: Peer, port: int, protocol: str = "TCP"
) -> bool:
    """Would a connection from src to dst:port be allowed by these NetworkPolicies?"""
    egress_ok = not isinstance(src, Pod) or _direction_allows(
        policies, src, dst, port, protocol, "Egress", dst
    )
    ingress_ok = not isinstance(dst, Pod) or _direction_allows(
        policies, dst, src, port, protocol, "Ingress", dst
    )
    return egress_ok and ingress_ok


# ---------------------------------------------------------------------------------------------
# Small schemas for the custom resources the Kubernetes schemas do not know (KEDA's CRDs).
# They cover the fields KEDA 2.x defines at the levels the manifests use and reject unknown ones.

_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_METADATA = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
        "namespace": {"type": "string"},
        "labels": _STRING_MAP,
        "annotations": _STRING_MAP,
    },
    "additionalProperties": False,
}

CRD_SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    ("keda.sh/v1alpha1", "ScaledObject"): {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "keda.sh/v1alpha1"},
            "kind": {"const": "ScaledObject"},
            "metadata": _METADATA,
            "spec": {
                "type": "object",
                "required": ["scaleTargetRef", "triggers"],
                "additionalProperties": False,
                "properties": {
                    "scaleTargetRef": {
                        "type": "object",
                        "required": ["name"],
                        "additionalProperties": False,
                        "properties": {
                            "apiVersion": {"type": "string"},
                            "kind": {"type": "string"},
                            "name": {"type": "string"},
                            "envSourceContainerName": {"type": "string"},
                        },
                    },
                    "pollingInterval": {"type": "integer", "minimum": 1},
                    "cooldownPeriod": {"type": "integer", "minimum": 0},
                    "initialCooldownPeriod": {"type": "integer", "minimum": 0},
                    "idleReplicaCount": {"type": "integer", "minimum": 0},
                    "minReplicaCount": {"type": "integer", "minimum": 0},
                    "maxReplicaCount": {"type": "integer", "minimum": 1},
                    "fallback": {
                        "type": "object",
                        "required": ["failureThreshold", "replicas"],
                        "properties": {
                            "failureThreshold": {"type": "integer"},
                            "replicas": {"type": "integer"},
                            "behavior": {"type": "string"},
                        },
                        "additionalProperties": False,
                    },
                    "advanced": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "restoreToOriginalReplicaCount": {"type": "boolean"},
                            "horizontalPodAutoscalerConfig": {
                                "type": "object",
                                "additionalProperties": False,
                                "properties": {
                                    "name": {"type": "string"},
                                    "behavior": {"type": "object"},
                                },
                            },
                            "scalingModifiers": {"type": "object"},
                        },
                    },
                    "triggers": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["type", "metadata"],
                            "additionalProperties": False,
                            "properties": {
                                "type": {"type": "string"},
                                "name": {"type": "string"},
                                "metadata": _STRING_MAP,
                                "metricType": {"enum": ["AverageValue", "Value", "Utilization"]},
                                "useCachedMetrics": {"type": "boolean"},
                                "authenticationRef": {
                                    "type": "object",
                                    "required": ["name"],
                                    "additionalProperties": False,
                                    "properties": {
                                        "name": {"type": "string"},
                                        "kind": {
                                            "enum": [
                                                "TriggerAuthentication",
                                                "ClusterTriggerAuthentication",
                                            ]
                                        },
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
        "additionalProperties": False,
    },
    ("keda.sh/v1alpha1", "TriggerAuthentication"): {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "keda.sh/v1alpha1"},
            "kind": {"const": "TriggerAuthentication"},
            "metadata": _METADATA,
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "secretTargetRef": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["parameter", "name", "key"],
                            "additionalProperties": False,
                            "properties": {
                                "parameter": {"type": "string"},
                                "name": {"type": "string"},
                                "key": {"type": "string"},
                            },
                        },
                    },
                    "env": {"type": "array"},
                    "podIdentity": {"type": "object"},
                    "hashiCorpVault": {"type": "object"},
                    "azureKeyVault": {"type": "object"},
                    "awsSecretManager": {"type": "object"},
                    "gcpSecretManager": {"type": "object"},
                    "configMapTargetRef": {"type": "array"},
                    "boundServiceAccountToken": {"type": "array"},
                },
            },
        },
        "additionalProperties": False,
    },
}
