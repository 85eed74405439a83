"""Every REST error is JSON `{code, message, details}` — routing errors and crashes included.

* `ApiError` → its HTTP status (grpc-gateway's table or the documented override), its headers,
  and `WWW-Authenticate` on 401 (RFC 6750 Bearer, or Basic on the login routes).
* Starlette's own 404 (no route) and 405 (known path, other method; `Allow` kept) are rendered
  the way grpc-gateway renders routing errors: NOT_FOUND (5) and UNIMPLEMENTED (12).
* Anything unexpected becomes 500 with a generic message; the exception is logged with the
  request's trace id (the logging formatter adds it) so the log line can be found from Jaeger.
"""

from __future__ import annotations

import logging
import re

import grpc
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway_svc.credentials import MISSING_TOKEN
from gateway_svc.errors import ApiError, error_body
from observability.tracing import current_trace_id

log = logging.getLogger(__name__)

REALM = "mp3mesh"
_QUOTED_UNSAFE = re.compile(r'[^\x20-\x7e]|["\\]')

_ROUTING_CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    404: grpc.StatusCode.NOT_FOUND,
    405: grpc.StatusCode.UNIMPLEMENTED,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    415: grpc.StatusCode.INVALID_ARGUMENT,
}


def _quoted(text: str) -> str:
    return _QUOTED_UNSAFE.sub("'", text)[:200]


def bearer_challenge(message: str | None) -> str:
    """RFC 6750 §3: no error code when credentials were missing, invalid_token otherwise."""
    if message is None:
        return f'Bearer realm="{REALM}"'
    return f'Bearer realm="{REALM}", error="invalid_token", error_description="{_quoted(message)}"'


def basic_challenge() -> str:
    return f'Basic realm="{REALM}", charset="UTF-8"'


def error_response(error: ApiError, *, challenge: str | None = None) -> Response:
    """The JSON response for an ApiError; `challenge` replaces the Bearer one on 401."""
    headers = dict(error.headers)
    if error.http_status == 401 and "WWW-Authenticate" not in headers:
        missing = error.message == MISSING_TOKEN
        headers["WWW-Authenticate"] = challenge or bearer_challenge(
            None if missing else error.message
        )
    return JSONResponse(error.body(), status_code=error.http_status, headers=headers)


async def api_error_handler(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc)


async def http_exception_handler(request: Request, exc: Exception) -> Response:
    """Starlette's routing errors (404, 405) and any other HTTPException, as JSON."""
    assert isinstance(exc, HTTPException)
    code = _ROUTING_CODES.get(exc.status_code, grpc.StatusCode.UNKNOWN)
    if exc.status_code == 404:
        message = f"no route for {request.url.path}"
    elif exc.status_code == 405:
        message = f"method {request.method} is not allowed on {request.url.path}"
    else:
        message = str(exc.detail)
    return JSONResponse(error_body(code, message), status_code=exc.status_code, headers=exc.headers)


class CatchAllMiddleware:
    """Turns an unexpected exception into a logged 500 JSON (if nothing was sent yet).

    Pure ASGI, so streaming responses pass through untouched. Placed inside the tracing
    middleware: the log line carries the request's trace id.
    """

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self._app(scope, receive, tracking_send)
        except Exception:
            log.exception(
                "unhandled error on %s %s",
                scope.get("method"),
                scope.get("path"),
                extra={"trace_id": current_trace_id()},
            )
            if started:
                raise
            body = error_body(
                grpc.StatusCode.INTERNAL, "internal error; the trace id is in the logs"
            )
            trace_id = current_trace_id()
            if trace_id:
                body["message"] = f"internal error (trace id {trace_id})"
            response = JSONResponse(body, status_code=500)
            await response(scope, receive, send)
