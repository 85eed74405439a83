"""The tutorial's routes, health, readiness, the OpenAPI document and the upload's trace."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.routing import Route

from tests.integration.gateway.conftest import PASSWORD, Gateway, User, assert_error, media_files
from tests.integration.gateway.jobdata import MP3, done_job

pytestmark = pytest.mark.integration

SAMPLE = next(p for p in media_files() if p.name.startswith("go-mp4"))


def basic(email: str, password: str) -> dict[str, str]:
    raw = base64.b64encode(f"{email}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def test_tutorial_login_upload_download(gateway: Gateway, user: User) -> None:
    with gateway.client() as client:
        login = client.post("/login", headers=basic(user.email, PASSWORD))
        assert login.status_code == 200
        assert login.headers["content-type"].startswith("text/plain")
        token = login.text
        assert client.get("/v1/jobs", headers={"Authorization": f"Bearer {token}"}).is_success

        wrong = client.post("/login", headers=basic(user.email, "not the password"))
        assert_error(wrong, 401, 16, "wrong")
        assert wrong.headers["www-authenticate"].startswith("Basic")
        assert_error(client.post("/login"), 401, 16, "Basic")

    with gateway.client(token) as client:
        upload = client.post("/upload", files={"file": (SAMPLE.name, SAMPLE.read_bytes())})
        assert upload.status_code == 202
        assert upload.json()["state"] == "JOB_STATE_QUEUED"
        queued = upload.json()["job_id"]
        assert_error(client.get("/download", params={"fid": queued}), 409, 9)
        assert_error(client.get("/download"), 400, 3, "fid")
        job_id = done_job(gateway, user, "tutorial.mp4")
        download = client.get("/download", params={"fid": job_id})
        assert download.status_code == 200 and download.content == MP3
        assert "tutorial.mp3" in download.headers["content-disposition"]


def test_v1_login_accepts_http_basic_without_a_body(gateway: Gateway, user: User) -> None:
    with gateway.client() as client:
        reply = client.post("/v1/login", headers=basic(user.email, PASSWORD))
    assert reply.status_code == 200
    body = reply.json()
    assert body["token_type"] == "Bearer" and body["access_token"]
    assert body["expires_at"].endswith("Z")


def test_healthz_and_readyz(gateway: Gateway) -> None:
    with gateway.client() as client:
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    assert ready.json()["dependencies"] == {"auth": "up", "mongodb": "up", "rabbitmq": "up"}


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def test_openapi_describes_every_route(gateway: Gateway) -> None:
    with gateway.client() as client:
        doc = client.get("/openapi.json").json()
    assert doc["openapi"] == "3.1.0"
    app = gateway.server.http.config.app
    for route in app.routes:
        assert isinstance(route, Route)
        operations = doc["paths"][route.path]
        for method in route.methods or ():
            if method != "HEAD" or route.path.endswith("/mp3"):
                assert method.lower() in operations, (route.path, method)
    schemas = doc["components"]["schemas"]
    for ref in set(_refs(doc)):
        assert ref.removeprefix("#/components/schemas/") in schemas, ref
    job = schemas["mp3mesh.gateway.v1.Job"]
    assert job["properties"]["create_time"] == {
        "type": "string",
        "format": "date-time",
        "description": "When it was created.",
    }
    state = schemas["mp3mesh.jobs.v1.JobState"]
    assert "JOB_STATE_DONE" in state["enum"]
    assert doc["paths"]["/v1/users"]["post"]["responses"]["201"]
    assert doc["paths"]["/v1/jobs/{job_id}"]["delete"]["responses"]["204"]
    assert doc["paths"]["/v1/jobs"]["get"]["parameters"][0]["name"] == "page_size"
    assert "bearer" in doc["components"]["securitySchemes"]
    assert set(schemas["Error"]["required"]) == {"code", "message", "details"}


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    exporter = InMemorySpanExporter()
    processor = SimpleSpanProcessor(exporter)
    provider.add_span_processor(processor)
    yield exporter
    processor.shutdown()


def test_one_upload_is_one_trace(gateway: Gateway, api: Any, spans: InMemorySpanExporter) -> None:
    reply = api.post("/v1/videos", files={"file": (SAMPLE.name, SAMPLE.read_bytes())})
    assert reply.status_code == 202
    job = gateway.jobs().get(reply.json()["job_id"])
    assert job is not None and len(job.trace_id) == 32
    in_trace = [
        span
        for span in spans.get_finished_spans()
        if span.context is not None and f"{span.context.trace_id:032x}" == job.trace_id
    ]
    names = {span.name for span in in_trace}
    assert any(span.parent is None and "POST" in span.name for span in in_trace), names
    assert "/mp3mesh.auth.v1.AuthService/Verify" in names  # client and auth_svc's server span
    assert "publish video" in names
    assert any(name.endswith(".insert") for name in names), names  # MongoDB
    with gateway.client() as client:
        client.get("/healthz")
    assert not any("healthz" in span.name for span in spans.get_finished_spans())
