"""Starlette routes generated from GatewayService's `google.api.http` rules (grpc-gateway style).

One route per path; the endpoint picks the rule by HTTP method, so a path bound to several
methods (GET and DELETE `/v1/jobs/{job_id}`) answers 405 with the right `Allow` for others.
Success statuses follow REST conventions where grpc-gateway would say 200 (see
`SUCCESS_STATUS`; both overrides are in the OpenAPI document too).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import MappingProxyType

import grpc
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway_svc.core import UnaryHandler
from gateway_svc.errors import ApiError
from gateway_svc.http_rules import HttpRule
from gateway_svc.json_mapping import decode_request, encode_response
from gateway_svc.rest_errors import basic_challenge, error_response

MAX_JSON_BODY_BYTES = 1024 * 1024

# CreateUser creates a resource (201 Created); DeleteJob has nothing to say (204 No Content).
SUCCESS_STATUS: Mapping[str, int] = MappingProxyType({"CreateUser": 201, "DeleteJob": 204})
# 401 on these tells the client to send HTTP Basic (they take credentials, not tokens).
BASIC_CHALLENGE_METHODS = frozenset({"Login"})


async def read_body(request: Request, limit: int = MAX_JSON_BODY_BYTES) -> bytes:
    """The whole (small) body; 413 past `limit` without reading the rest."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _body_too_large(limit)
    body = bytearray()
    async for piece in request.stream():
        body += piece
        if len(body) > limit:
            raise _body_too_large(limit)
    return bytes(body)


def _body_too_large(limit: int) -> ApiError:
    return ApiError(
        grpc.StatusCode.INVALID_ARGUMENT,
        f"the JSON body is larger than {limit} bytes",
        http_status=413,
    )


async def call_rule(rule: HttpRule, handler: UnaryHandler, request: Request) -> Response:
    """Decodes the request, runs the core call in a worker thread, encodes the answer."""
    authorization = request.headers.get("authorization")
    try:
        body = await read_body(request) if rule.body else b""
        message = decode_request(
            rule,
            path_params={key: str(value) for key, value in request.path_params.items()},
            query=request.query_params.multi_items(),
            body=body,
            content_type=request.headers.get("content-type"),
        )
        reply = await run_in_threadpool(handler, message, authorization)
    except ApiError as exc:
        challenge = basic_challenge() if rule.name in BASIC_CHALLENGE_METHODS else None
        return error_response(exc, challenge=challenge)
    status = SUCCESS_STATUS.get(rule.name, 200)
    if status == 204:
        return Response(status_code=204)
    return JSONResponse(encode_response(rule, reply), status_code=status)


def shim_routes(rules: Sequence[HttpRule], handlers: Mapping[str, UnaryHandler]) -> list[Route]:
    """The routes for `rules`; every rule's method must have a handler (checked at start)."""
    by_path: dict[str, dict[str, HttpRule]] = {}
    for rule in rules:
        if rule.name not in handlers:
            raise ValueError(f"no handler for {rule.method.full_name}")
        verbs = by_path.setdefault(rule.path, {})
        if rule.verb in verbs:
            raise ValueError(f"{rule.verb} {rule.template} is bound twice")
        verbs[rule.verb] = rule
    routes = []
    for path, verbs in by_path.items():
        routes.append(Route(path, _endpoint(verbs, handlers), methods=list(verbs)))
    return routes


def _endpoint(
    verbs: Mapping[str, HttpRule], handlers: Mapping[str, UnaryHandler]
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        rule = verbs[method]  # Route already answered 405 for other methods
        return await call_rule(rule, handlers[rule.name], request)

    return endpoint
