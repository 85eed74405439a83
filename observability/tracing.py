"""Tracer provider set-up honouring the standard OTEL_* variables.

Exporter choice, in order: OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` (or the traces-specific
variable) is set, e.g. Jaeger on :4317; none when `OTEL_TRACES_EXPORTER=none`; otherwise the
JSON-lines file named by `MP3MESH_TRACE_FILE`; otherwise nothing is exported (spans are still
created, so trace ids still reach logs and jobs). Sampler and resource attributes come from
`OTEL_TRACES_SAMPLER` / `OTEL_RESOURCE_ATTRIBUTES` / `OTEL_SERVICE_NAME` through the SDK.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from observability.jsonfile import JsonLinesSpanExporter

log = logging.getLogger(__name__)

TRACING_ENV_VARS = (
    "OTEL_SERVICE_NAME",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_TRACES_EXPORTER",
    "OTEL_RESOURCE_ATTRIBUTES",
    "MP3MESH_TRACE_FILE",
)


def choose_exporter(environ: Mapping[str, str]) -> SpanExporter | None:
    if environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return None
    if environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    ):
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()  # reads endpoint, headers, TLS from OTEL_* itself
    trace_file = environ.get("MP3MESH_TRACE_FILE")
    if trace_file:
        return JsonLinesSpanExporter(Path(trace_file))
    return None


def init_tracing(
    service_name: str,
    environ: Mapping[str, str],
    *,
    instrument_pymongo: bool = False,
    instrument_pymysql: bool = False,
) -> TracerProvider:
    """Installs the process-wide tracer provider (once) and returns it.

    OpenTelemetry allows one global provider per process; a second call (tests starting
    several services in one process) reuses the first one.
    """
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        provider = current
    else:
        name = environ.get("OTEL_SERVICE_NAME") or service_name
        provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name}))
        exporter = choose_exporter(environ)
        if exporter is not None:
            provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=500))
        trace.set_tracer_provider(provider)
        log.debug("tracing initialised", extra={"exporter": type(exporter).__name__})
    if instrument_pymongo:
        from opentelemetry.instrumentation.pymongo import PymongoInstrumentor

        if not PymongoInstrumentor().is_instrumented_by_opentelemetry:
            PymongoInstrumentor().instrument(tracer_provider=provider)
    if instrument_pymysql:
        from opentelemetry.instrumentation.pymysql import PyMySQLInstrumentor

        if not PyMySQLInstrumentor().is_instrumented_by_opentelemetry:
            PyMySQLInstrumentor().instrument(tracer_provider=provider)
    return provider


def current_trace_id() -> str:
    """The current span's trace id as 32 hex digits, or "" outside a trace."""
    context = trace.get_current_span().get_span_context()
    return f"{context.trace_id:032x}" if context.is_valid else ""
