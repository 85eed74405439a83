"""The REST face: generated JSON routes, the streaming routes, the tutorial's, health, docs.

Middleware, outermost first: OpenTelemetry (each request is a root span unless the caller sent
a `traceparent`; health probes are not traced, nor are the per-piece ASGI receive/send events,
which would be thousands of spans for one upload), then the catch-all that turns crashes into
logged JSON 500s. `ApiError` and Starlette's routing errors are rendered as JSON by exception
handlers (rest_errors.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mp3mesh.gateway.v1 import gateway_pb2
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from gateway_svc.core import GatewayCore
from gateway_svc.credentials import basic_credentials
from gateway_svc.errors import ApiError, invalid, unauthenticated
from gateway_svc.http_rules import HttpRule
from gateway_svc.json_mapping import message_to_json
from gateway_svc.readiness import Readiness
from gateway_svc.rest_errors import (
    CatchAllMiddleware,
    api_error_handler,
    basic_challenge,
    error_response,
    http_exception_handler,
)
from gateway_svc.rest_media import download_mp3, upload_video
from gateway_svc.rest_shim import shim_routes
from gateway_svc.trace_context import FreshTraceContextMiddleware

UNTRACED_PATHS = "/healthz,/readyz"


def _accepted(reply: gateway_pb2.UploadVideoResponse) -> Response:
    return JSONResponse(
        message_to_json(reply), status_code=202, headers={"Location": reply.status_url}
    )


class Endpoints:
    """The hand-written endpoints, bound to one core and one readiness."""

    def __init__(self, core: GatewayCore, readiness: Readiness, openapi: dict[str, Any]) -> None:
        self._core = core
        self._readiness = readiness
        self._openapi = openapi

    async def upload(self, request: Request) -> Response:
        return _accepted(await upload_video(self._core, request))

    async def download(self, request: Request) -> Response:
        return await download_mp3(self._core, request, str(request.path_params["job_id"]))

    async def tutorial_login(self, request: Request) -> Response:
        """HTTP Basic → the bare token as text, as the tutorial's clients expect."""
        authorization = request.headers.get("authorization")
        try:
            credentials = basic_credentials(authorization)
            if credentials is None:
                raise unauthenticated("send the email and password with HTTP Basic")
            reply = await run_in_threadpool(
                self._core.login, gateway_pb2.LoginRequest(), authorization
            )
        except ApiError as exc:
            return error_response(exc, challenge=basic_challenge())
        return PlainTextResponse(reply.access_token)

    async def tutorial_download(self, request: Request) -> Response:
        job_id = request.query_params.get("fid", "")
        if not job_id:
            raise invalid("fid (the job id) is required")
        return await download_mp3(self._core, request, job_id)

    async def healthz(self, _request: Request) -> Response:
        return JSONResponse({"status": "alive"})

    async def readyz(self, _request: Request) -> Response:
        snapshot = self._readiness.snapshot()
        return JSONResponse(snapshot, status_code=200 if snapshot["ready"] else 503)

    async def openapi(self, _request: Request) -> Response:
        return JSONResponse(self._openapi)


def build_app(
    core: GatewayCore,
    rules: Sequence[HttpRule],
    readiness: Readiness,
    openapi: dict[str, Any],
) -> Starlette:
    endpoints = Endpoints(core, readiness, openapi)
    routes: list[BaseRoute] = [
        *shim_routes(rules, core.unary_handlers()),
        Route("/v1/videos", endpoints.upload, methods=["POST"]),
        Route("/v1/jobs/{job_id}/mp3", endpoints.download, methods=["GET", "HEAD"]),
        Route("/login", endpoints.tutorial_login, methods=["POST"]),
        Route("/upload", endpoints.upload, methods=["POST"]),
        Route("/download", endpoints.tutorial_download, methods=["GET", "HEAD"]),
        Route("/healthz", endpoints.healthz, methods=["GET"]),
        Route("/readyz", endpoints.readyz, methods=["GET"]),
        Route("/openapi.json", endpoints.openapi, methods=["GET"]),
    ]
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(FreshTraceContextMiddleware),
            Middleware(
                OpenTelemetryMiddleware,
                excluded_urls=UNTRACED_PATHS,
                exclude_spans=["receive", "send"],
            ),
            Middleware(CatchAllMiddleware),
        ],
        exception_handlers={ApiError: api_error_handler, HTTPException: http_exception_handler},
    )
