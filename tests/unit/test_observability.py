"""Logs carry trace ids; the local span file is readable JSON lines."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from observability.jsonfile import JsonLinesSpanExporter
from observability.logs import JsonFormatter
from observability.tracing import choose_exporter


def test_log_lines_are_json_with_the_current_trace_and_span(tmp_path: Path) -> None:
    provider = TracerProvider()
    tracer = provider.get_tracer("test")
    record = logging.makeLogRecord(
        {"msg": "hello %s", "args": ("world",), "levelname": "INFO", "job_id": "j1"}
    )
    with tracer.start_as_current_span("work") as span:
        line = JsonFormatter("svc").format(record)
        expected = f"{span.get_span_context().trace_id:032x}"
    entry = json.loads(line)
    assert entry["message"] == "hello world"
    assert entry["service"] == "svc"
    assert entry["trace_id"] == expected
    assert entry["job_id"] == "j1"


def test_spans_are_written_as_json_lines_with_service_and_parent(tmp_path: Path) -> None:
    path = tmp_path / "spans.jsonl"
    provider = TracerProvider(resource=Resource.create({"service.name": "svc-a"}))
    provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(path)))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("parent"), tracer.start_as_current_span("child"):
        pass
    spans = [json.loads(line) for line in path.read_text().splitlines()]
    by_name = {span["name"]: span for span in spans}
    assert by_name["child"]["parent_span_id"] == by_name["parent"]["span_id"]
    assert by_name["child"]["trace_id"] == by_name["parent"]["trace_id"]
    assert by_name["parent"]["service"] == "svc-a"


def test_exporter_choice_follows_the_environment(tmp_path: Path) -> None:
    assert choose_exporter({}) is None
    assert choose_exporter({"OTEL_TRACES_EXPORTER": "none", "MP3MESH_TRACE_FILE": "x"}) is None
    assert isinstance(
        choose_exporter({"MP3MESH_TRACE_FILE": str(tmp_path / "t.jsonl")}), JsonLinesSpanExporter
    )
    otlp = choose_exporter({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"})
    assert type(otlp).__name__ == "OTLPSpanExporter"


def test_traced_channel_can_be_built() -> None:
    from observability.grpc import traced_channel

    channel = traced_channel("127.0.0.1:1")
    assert hasattr(channel, "unary_unary")
    channel.close()
