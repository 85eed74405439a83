"""The environment the manifests give each service is exactly the one the service reads.

Each service package declares `ENV_VARS: tuple[str, ...]` in `<package>/config.py`: every
variable it reads. The manifests must set all of them, except the OpenTelemetry ones that have
a safe default (no exporter, a default service name) when the tracing component is off, and
must set nothing else.
"""

from __future__ import annotations

import importlib
from urllib.parse import urlsplit

import kube_manifests as km
import pytest

# Variables whose default is right in Kubernetes, so the manifests may leave them unset.
# Everything else a service reads must be set. A new variable fails the test below until it
# is either set in the manifests or added here with the reason its default is safe.
OPTIONAL = frozenset(
    {
        # OpenTelemetry: without an endpoint nothing is exported; the tracing component sets them.
        "OTEL_SERVICE_NAME",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_TRACES_EXPORTER",
        "OTEL_RESOURCE_ATTRIBUTES",
        # A local JSON-lines span file: for local runs only (the root filesystem is read-only).
        "MP3MESH_TRACE_FILE",
        # 0.0.0.0, what a pod needs.
        "BIND_HOST",
        # Tunables with production defaults (meshkit/config.py and the services' config.py).
        "LOGIN_MAX_FAILURES",
        "LOGIN_FAILURE_WINDOW_S",
        "AUTH_TIMEOUT_S",
        "DELIVERY_LIMIT",
        "SMTP_TIMEOUT_S",
        "NOTIFIER_CONCURRENCY",
        # Together or not at all: a relay without authentication needs neither.
        "SMTP_USERNAME",
        "SMTP_PASSWORD",
    }
)
# Set by the tracing component on every service.
TRACING = frozenset({"OTEL_SERVICE_NAME", "OTEL_EXPORTER_OTLP_ENDPOINT"})
# Credentials and URLs carrying them: only ever from a Secret.
SECRET_VARS = frozenset(
    {
        "MYSQL_URL",
        "JWT_SECRET",
        "MONGO_URI",
        "AMQP_URL",
        "SMTP_URL",
        "SMTP_USERNAME",
        "SMTP_PASSWORD",
    }
)

CASES = [pytest.param(case, id=case.name) for case in km.RENDER_CASES]
SERVICE_NAMES = list(km.SERVICES)


def env_vars_read_by(service: str) -> frozenset[str]:
    package = km.SERVICES[service][0]
    try:
        config = importlib.import_module(f"{package}.config")
    except ImportError as exc:
        pytest.fail(f"cannot import {package}.config to read its ENV_VARS: {exc}")
    declared = getattr(config, "ENV_VARS", None)
    assert isinstance(declared, tuple) and all(isinstance(v, str) for v in declared), (
        f"{package}.config.ENV_VARS must be a tuple of variable names"
    )
    assert len(declared) == len(set(declared)), f"{package}.config.ENV_VARS lists a variable twice"
    return frozenset(declared)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_manifests_set_exactly_the_variables_the_service_reads(
    service: str, case: km.RenderCase, rendered: km.RenderLookup
) -> None:
    reads = env_vars_read_by(service)
    container = km.main_container(km.app_deployment(rendered(case.name), service))
    sets = frozenset(km.env_map(container))
    assert not container.get("envFrom"), (
        f"{service}: envFrom would hand it variables it does not read"
    )
    assert sets <= reads, f"{service} gets variables it does not read: {sorted(sets - reads)}"
    required = reads - OPTIONAL
    if "tracing" in case.components:
        required |= reads & TRACING
    assert required <= sets, (
        f"{service} reads variables the manifests do not set: {sorted(required - sets)}"
    )


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_secret_variables_come_from_secrets_and_the_rest_do_not(
    service: str, case: km.RenderCase, rendered: km.RenderLookup
) -> None:
    for name, env in km.env_map(
        km.main_container(km.app_deployment(rendered(case.name), service))
    ).items():
        from_secret = "secretKeyRef" in (env.get("valueFrom") or {})
        if name in SECRET_VARS:
            assert from_secret, (
                f"{service}: {name} must come from a Secret, not a literal or a ConfigMap"
            )
        else:
            assert not from_secret, f"{service}: {name} is not secret; keep it in the ConfigMap"


@pytest.mark.parametrize("case", CASES)
def test_settings_live_in_the_configmap_and_ports_in_the_deployment(
    case: km.RenderCase, rendered: km.RenderLookup
) -> None:
    docs = rendered(case.name)
    for service in km.SERVICES:
        env = km.env_map(km.main_container(km.app_deployment(docs, service)))
        for name, entry in env.items():
            if name in SECRET_VARS or name in TRACING or name in ("GRPC_PORT", "HTTP_PORT"):
                continue
            assert "configMapKeyRef" in (entry.get("valueFrom") or {}), (
                f"{service}: {name} should come from mp3mesh-config"
            )
    assert km.config_data(docs)["MP3MESH_ENV"] == "production"


@pytest.mark.parametrize(
    "case", [pytest.param(c, id=c.name) for c in km.RENDER_CASES if "tracing" in c.components]
)
def test_tracing_points_every_service_at_jaeger_otlp_grpc(
    case: km.RenderCase, rendered: km.RenderLookup
) -> None:
    docs = rendered(case.name)
    jaeger = km.named(docs, "Service", "jaeger")
    assert jaeger is not None
    ports = {p["port"]: p for p in jaeger["spec"]["ports"]}
    assert 4317 in ports and 16686 in ports, (
        "Jaeger must take OTLP/gRPC on 4317 and serve its UI on 16686"
    )
    for service in km.SERVICES:
        env = km.env_map(km.main_container(km.app_deployment(docs, service)))
        endpoint = urlsplit(env["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"])
        assert (endpoint.scheme, endpoint.hostname, endpoint.port) == ("http", "jaeger", 4317)
        assert env["OTEL_SERVICE_NAME"]["value"] == service
