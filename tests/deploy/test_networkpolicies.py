"""NetworkPolicies (production, and any render with the networkpolicies component): deny by
default, then only the flows of the design."""

from __future__ import annotations

import kube_manifests as km
import pytest

CASES = [pytest.param(c, id=c.name) for c in km.RENDER_CASES if "networkpolicies" in c.components]

# An address outside the cluster, where production's managed MySQL/MongoDB/RabbitMQ/SMTP live.
OUTSIDE = km.External("203.0.113.10")
OUTSIDE_V6 = km.External("2001:db8::10")
KUBE_DNS = km.Pod("coredns", "kube-system", {"k8s-app": "kube-dns"})
INGRESS_CONTROLLER = km.Pod(
    "ingress-nginx-controller", "ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"}
)
STRANGER = km.Pod("stranger", "default", {"app.kubernetes.io/name": "gateway"})

# Who may open a connection to what (besides DNS), by workload name.
MYSQL_CLIENTS = {"auth"}
MONGO_CLIENTS = {"gateway", "converter", "notifier"}
AMQP_CLIENTS = {"gateway", "converter", "notifier"}
AUTH_CLIENTS = {"gateway"}


def _setup(
    case: km.RenderCase, rendered: km.RenderLookup
) -> tuple[list[km.Doc], dict[str, km.Pod]]:
    docs = rendered(case.name)
    return km.of_kind(docs, "NetworkPolicy"), {p.name: p for p in km.pods_of(docs)}


def _reachers(policies: list[km.Doc], pods: dict[str, km.Pod], dst: km.Peer, port: int) -> set[str]:
    return {name for name, pod in pods.items() if km.can_connect(policies, pod, dst, port)}


def test_the_evaluator_sees_default_deny_and_allow_rules() -> None:
    """Guards the tests below against an evaluator that allows everything."""
    a, b = km.Pod("a", "ns", {"app": "a"}), km.Pod("b", "ns", {"app": "b"})
    deny = {
        "metadata": {"name": "deny", "namespace": "ns"},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    }
    assert km.can_connect([], a, b, 80)
    assert not km.can_connect([deny], a, b, 80)
    allow_egress = {
        "metadata": {"name": "e", "namespace": "ns"},
        "spec": {
            "podSelector": {"matchLabels": {"app": "a"}},
            "policyTypes": ["Egress"],
            "egress": [
                {"to": [{"podSelector": {"matchLabels": {"app": "b"}}}], "ports": [{"port": 80}]}
            ],
        },
    }
    allow_ingress = {
        "metadata": {"name": "i", "namespace": "ns"},
        "spec": {
            "podSelector": {"matchLabels": {"app": "b"}},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "a"}}}]}],
        },
    }
    assert not km.can_connect([deny, allow_egress], a, b, 80)
    assert km.can_connect([deny, allow_egress, allow_ingress], a, b, 80)
    assert not km.can_connect([deny, allow_egress, allow_ingress], a, b, 81)
    assert not km.can_connect([deny, allow_egress, allow_ingress], b, a, 80)


@pytest.mark.parametrize("case", CASES)
def test_everything_is_denied_by_default(case: km.RenderCase, rendered: km.RenderLookup) -> None:
    policies, pods = _setup(case, rendered)
    deny_all = [
        p
        for p in policies
        if p["spec"]["podSelector"] == {}
        and set(p["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
    ]
    assert deny_all, "no default-deny NetworkPolicy for Ingress and Egress"
    for name, pod in pods.items():
        assert not km.can_connect(policies, pod, OUTSIDE, 443), (
            f"{name} reaches the internet on 443"
        )
        assert not km.can_connect(policies, STRANGER, pod, 8080), (
            f"another namespace reaches {name}"
        )


@pytest.mark.parametrize("case", CASES)
def test_every_pod_may_resolve_names(case: km.RenderCase, rendered: km.RenderLookup) -> None:
    policies, pods = _setup(case, rendered)
    for name, pod in pods.items():
        assert km.can_connect(policies, pod, KUBE_DNS, 53, "UDP"), (
            f"{name} cannot reach DNS over UDP"
        )
        assert km.can_connect(policies, pod, KUBE_DNS, 53, "TCP"), (
            f"{name} cannot reach DNS over TCP"
        )


@pytest.mark.parametrize("case", CASES)
def test_only_the_gateway_reaches_auth(case: km.RenderCase, rendered: km.RenderLookup) -> None:
    policies, pods = _setup(case, rendered)
    assert _reachers(policies, pods, pods["auth"], 50051) == AUTH_CLIENTS
    assert not km.can_connect(policies, INGRESS_CONTROLLER, pods["auth"], 50051)


@pytest.mark.parametrize("case", CASES)
def test_only_the_ingress_controller_reaches_the_gateway(
    case: km.RenderCase, rendered: km.RenderLookup
) -> None:
    policies, pods = _setup(case, rendered)
    assert km.can_connect(policies, INGRESS_CONTROLLER, pods["gateway"], 8080)
    assert _reachers(policies, pods, pods["gateway"], 8080) == set()
    assert not km.can_connect(policies, INGRESS_CONTROLLER, pods["converter"], 50052)


@pytest.mark.parametrize("case", CASES)
def test_only_auth_reaches_mysql(case: km.RenderCase, rendered: km.RenderLookup) -> None:
    policies, pods = _setup(case, rendered)
    assert _reachers(policies, pods, OUTSIDE, 3306) == MYSQL_CLIENTS
    if "mariadb" in pods:
        assert _reachers(policies, pods, pods["mariadb"], 3306) == MYSQL_CLIENTS


@pytest.mark.parametrize("case", CASES)
def test_only_gateway_converter_and_notifier_reach_mongodb(
    case: km.RenderCase, rendered: km.RenderLookup
) -> None:
    policies, pods = _setup(case, rendered)
    assert _reachers(policies, pods, OUTSIDE, 27017) == MONGO_CLIENTS
    assert _reachers(policies, pods, OUTSIDE_V6, 27017) == MONGO_CLIENTS
    if "mongodb" in pods:
        assert _reachers(policies, pods, pods["mongodb"], 27017) == MONGO_CLIENTS


@pytest.mark.parametrize("case", CASES)
def test_only_mp3mesh_services_reach_rabbitmq(
    case: km.RenderCase, rendered: km.RenderLookup
) -> None:
    policies, pods = _setup(case, rendered)
    for port in (5672, 5671):
        reachers = _reachers(policies, pods, OUTSIDE, port)
        assert reachers <= set(km.SERVICES) and reachers == AMQP_CLIENTS
    if "rabbitmq" in pods:
        assert _reachers(policies, pods, pods["rabbitmq"], 5672) == AMQP_CLIENTS
        keda = km.Pod("keda-operator", "keda", {"app": "keda-operator"})
        assert km.can_connect(policies, keda, pods["rabbitmq"], 5672), (
            "KEDA cannot measure the video queue"
        )


@pytest.mark.parametrize("case", CASES)
def test_only_the_notifier_sends_mail(case: km.RenderCase, rendered: km.RenderLookup) -> None:
    policies, pods = _setup(case, rendered)
    for port in (25, 465, 587):
        assert _reachers(policies, pods, OUTSIDE, port) == {"notifier"}
    if "mailpit" in pods:
        assert _reachers(policies, pods, pods["mailpit"], 1025) == {"notifier"}


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(c, id=c.name)
        for c in km.RENDER_CASES
        if {"networkpolicies", "tracing"} <= c.components
    ],
)
def test_services_export_traces_to_jaeger_when_tracing_is_on(
    case: km.RenderCase, rendered: km.RenderLookup
) -> None:
    policies, pods = _setup(case, rendered)
    assert _reachers(policies, pods, pods["jaeger"], 4317) == set(km.SERVICES)


def test_network_policies_are_part_of_production() -> None:
    assert "networkpolicies" in km.CASES_BY_NAME["production"].components
