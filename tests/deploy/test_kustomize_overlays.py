"""What each overlay and component promises: Minikube's local images and in-cluster infra,
production's replicas, autoscaling and external infra, the ingress limits and hosts."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import kube_manifests as km
import pytest

INGRESS_CASES = [pytest.param(c, id=c.name) for c in km.RENDER_CASES if "ingress" in c.components]
AUTOSCALING_CASES = [
    pytest.param(c, id=c.name) for c in km.RENDER_CASES if "autoscaling" in c.components
]
INFRA_CASES = [pytest.param(c, id=c.name) for c in km.RENDER_CASES if "infra" in c.components]
PRODUCTION_CASES = [
    pytest.param(c, id=c.name) for c in km.RENDER_CASES if c.overlay == "production"
]
MINIKUBE_CASES = [pytest.param(c, id=c.name) for c in km.RENDER_CASES if c.overlay == "minikube"]

NGINX_SIZE = re.compile(r"^(\d+)([kKmMgG]?)$")


def nginx_size_bytes(value: str) -> int:
    """nginx size syntax (client_max_body_size): bytes, or k/m/g suffixes of 1024."""
    match = NGINX_SIZE.match(value)
    assert match, f"{value!r} is not an nginx size"
    return int(match[1]) * 1024 ** " kmg".index(match[2].lower() or " ")


def test_nginx_size_parser() -> None:
    assert nginx_size_bytes("2147483648") == 2 * 1024**3
    assert nginx_size_bytes("2g") == nginx_size_bytes("2048m") == 2 * 1024**3
    assert nginx_size_bytes("1k") == 1024


@pytest.mark.parametrize("case", INGRESS_CASES)
def test_ingress_body_size_limit_matches_max_upload_bytes(
    case: km.RenderCase, rendered: km.RenderLookup
) -> None:
    docs = rendered(case.name)
    ingress = km.named(docs, "Ingress", "gateway")
    assert ingress is not None
    annotations = ingress["metadata"]["annotations"]
    limit = nginx_size_bytes(annotations["nginx.ingress.kubernetes.io/proxy-body-size"])
    assert limit == int(km.config_data(docs)["MAX_UPLOAD_BYTES"])
    assert annotations.get("nginx.ingress.kubernetes.io/proxy-request-buffering") == "off", (
        "uploads should stream"
    )


@pytest.mark.parametrize("case", INGRESS_CASES)
def test_ingress_routes_its_host_to_the_gateway_over_tls(
    case: km.RenderCase, rendered: km.RenderLookup
) -> None:
    docs = rendered(case.name)
    ingress = km.named(docs, "Ingress", "gateway")
    assert ingress is not None
    spec = ingress["spec"]
    assert spec["ingressClassName"] == "nginx"
    (rule,) = spec["rules"]
    (tls,) = spec["tls"]
    assert tls["hosts"] == [rule["host"]] and tls["secretName"]
    backend = rule["http"]["paths"][0]["backend"]["service"]
    gateway = km.named(docs, "Service", backend["name"])
    assert gateway is not None and backend["name"] == "gateway"
    assert backend["port"]["name"] in {p["name"] for p in gateway["spec"]["ports"]}
    if case.overlay is not None:
        public = urlsplit(km.config_data(docs)["PUBLIC_BASE_URL"])
        assert (public.scheme, public.hostname) == ("https", rule["host"]), (
            "PUBLIC_BASE_URL must name the ingress host"
        )


@pytest.mark.parametrize("case", AUTOSCALING_CASES)
def test_gateway_has_an_hpa_and_converter_scales_on_the_video_queue(
    case: km.RenderCase, rendered: km.RenderLookup
) -> None:
    docs = rendered(case.name)
    (hpa,) = km.of_kind(docs, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "gateway",
    }
    (scaled,) = km.of_kind(docs, "ScaledObject")
    assert scaled["spec"]["scaleTargetRef"]["name"] == "converter"
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "rabbitmq"
    assert (
        trigger["metadata"]["queueName"] == "video" and trigger["metadata"]["mode"] == "QueueLength"
    )
    auth = km.named(docs, "TriggerAuthentication", trigger["authenticationRef"]["name"])
    assert auth is not None, "the ScaledObject's TriggerAuthentication is missing"
    (ref,) = auth["spec"]["secretTargetRef"]
    assert (ref["parameter"], ref["key"]) == ("host", "AMQP_URL")
    for name in ("gateway", "converter"):
        assert "replicas" not in km.app_deployment(docs, name)["spec"], (
            f"{name}'s replica count belongs to its autoscaler"
        )


@pytest.mark.parametrize("case", INFRA_CASES)
def test_infra_runs_mysql_mongodb_and_rabbitmq_as_statefulsets(
    case: km.RenderCase, rendered: km.RenderLookup
) -> None:
    docs = rendered(case.name)
    expected = {
        "mariadb": ("mariadb:", 3306),
        "mongodb": ("mongo:7.", 27017),
        "rabbitmq": ("rabbitmq:3.13", 5672),
    }
    for name, (image, port) in expected.items():
        sts = km.named(docs, "StatefulSet", name)
        assert sts is not None, f"StatefulSet/{name} missing"
        (container,) = km.pod_template(sts)["spec"]["containers"]
        assert container["image"].startswith(image)
        assert "management" in container["image"] or name != "rabbitmq"
        service = km.named(docs, "Service", name)
        assert service is not None and port in {p["port"] for p in service["spec"]["ports"]}
        for probe in ("readinessProbe", "livenessProbe"):
            assert {"exec", "tcpSocket"} & set(container[probe]), (
                f"{name} {probe} should be exec or tcpSocket"
            )
        credentials = [
            e for e in container.get("env") or [] if "secretKeyRef" in (e.get("valueFrom") or {})
        ]
        assert credentials, f"{name} should take its credentials from a Secret"


@pytest.mark.parametrize("case", PRODUCTION_CASES)
def test_production_runs_every_deployment_at_least_twice(
    case: km.RenderCase, rendered: km.RenderLookup
) -> None:
    docs = rendered(case.name)
    minimums = {
        h["spec"]["scaleTargetRef"]["name"]: h["spec"].get("minReplicas", 1)
        for h in km.of_kind(docs, "HorizontalPodAutoscaler")
    }
    minimums |= {
        s["spec"]["scaleTargetRef"]["name"]: s["spec"].get("minReplicaCount", 0)
        for s in km.of_kind(docs, "ScaledObject")
    }
    for service in km.SERVICES:
        spec = km.app_deployment(docs, service)["spec"]
        replicas = minimums[service] if service in minimums else spec.get("replicas", 1)
        assert replicas >= 2, f"{service} runs {replicas} replica(s) in production"


@pytest.mark.parametrize("case", PRODUCTION_CASES)
def test_production_uses_external_infra_and_released_images(
    case: km.RenderCase, rendered: km.RenderLookup
) -> None:
    docs = rendered(case.name)
    assert not km.of_kind(docs, "StatefulSet"), "production's databases and broker are external"
    assert not km.of_kind(docs, "PersistentVolumeClaim")
    for service in km.SERVICES:
        container = km.main_container(km.app_deployment(docs, service))
        assert re.fullmatch(
            rf"[\w.-]+(:\d+)?/mp3mesh/{service}:\d+\.\d+\.\d+", container["image"]
        ), container["image"]
        assert container.get("imagePullPolicy") != "Never"


@pytest.mark.parametrize("case", MINIKUBE_CASES)
def test_minikube_runs_one_local_image_replica_per_service(
    case: km.RenderCase, rendered: km.RenderLookup
) -> None:
    docs = rendered(case.name)
    for service in km.SERVICES:
        deployment = km.app_deployment(docs, service)
        container = km.main_container(deployment)
        assert deployment["spec"]["replicas"] == 1
        assert container["image"] == f"mp3mesh/{service}:dev"
        assert container["imagePullPolicy"] == "Never", (
            "images are built into Minikube, never pulled"
        )
    ingress = km.named(docs, "Ingress", "gateway")
    assert ingress is not None and ingress["spec"]["rules"][0]["host"] == "mp3mesh.local"
    for workload in km.workloads(docs):
        assert workload["spec"].get("replicas", 1) == 1, (
            f"{km.doc_id(workload)}: one replica each on Minikube"
        )
    assert {"jaeger", "mailpit"} <= {d["metadata"]["name"] for d in km.of_kind(docs, "Deployment")}
