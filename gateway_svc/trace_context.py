"""Each HTTP request starts from an empty trace context.

uvicorn starts the next request of a keep-alive connection from inside the previous request's
task, so that request inherits whatever span was current there: without this reset, a status
poll right after an upload became a child of the upload's trace. The OpenTelemetry middleware
inside still continues a caller's trace when a `traceparent` header comes with the request.
"""

from __future__ import annotations

from opentelemetry import context
from starlette.types import ASGIApp, Receive, Scope, Send


class FreshTraceContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = context.attach(context.Context())
        try:
            await self.app(scope, receive, send)
        finally:
            context.detach(token)
