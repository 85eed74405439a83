"""Traced gRPC servers and channels: context rides in the call metadata."""

from __future__ import annotations

import grpc
from opentelemetry.instrumentation.grpc import (
    client_interceptor,
    filters,
    grpcext,
    server_interceptor,
)


def traced_server_interceptors() -> list[grpc.ServerInterceptor]:
    """Server interceptors that continue the caller's trace; health checks are not traced."""
    return [server_interceptor(filter_=filters.negate(filters.health_check()))]


def traced_channel(target: str) -> grpc.Channel:
    """An insecure channel whose calls carry the current trace context.

    OpenTelemetry's client interceptor implements its own `grpcext` interface, so it wraps the
    channel with `grpcext.intercept_channel` (`grpc.intercept_channel` refuses it).
    """
    channel = grpc.insecure_channel(
        target, options=[("grpc.keepalive_time_ms", 30_000), ("grpc.enable_retries", 1)]
    )
    traced: grpc.Channel = grpcext.intercept_channel(channel, client_interceptor())
    return traced
