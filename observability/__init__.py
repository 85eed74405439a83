"""One tracing and logging setup for every service of the mesh.

Trace context travels in gRPC metadata (the OpenTelemetry gRPC interceptors) and in AMQP
message headers (`opentelemetry.propagate.inject/extract`, used by meshkit.amqp), so one
upload is one trace from the REST request to the notifier's email.
"""

from observability.logs import init_logging
from observability.tracing import init_tracing

__all__ = ["init_logging", "init_tracing"]
