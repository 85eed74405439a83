"""Errors as gRPC status codes inside, grpc-gateway's HTTP statuses outside.

The core raises `ApiError` with a `grpc.StatusCode`; the gRPC face aborts with it as is, the
REST face turns it into an HTTP status with grpc-gateway's table (`HTTP_STATUS`) and the body
`{"code": <grpc code number>, "message": ..., "details": []}`. A handful of REST answers differ
from the table because the REST contract (DESIGN.md) wants a more precise status; those carry
an explicit `http_status` override and are listed in `REST_OVERRIDES` (also published in the
OpenAPI document).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import grpc

# grpc-gateway v2 runtime.HTTPStatusFromCode.
HTTP_STATUS: Mapping[grpc.StatusCode, int] = MappingProxyType(
    {
        grpc.StatusCode.OK: 200,
        grpc.StatusCode.CANCELLED: 499,
        grpc.StatusCode.UNKNOWN: 500,
        grpc.StatusCode.INVALID_ARGUMENT: 400,
        grpc.StatusCode.DEADLINE_EXCEEDED: 504,
        grpc.StatusCode.NOT_FOUND: 404,
        grpc.StatusCode.ALREADY_EXISTS: 409,
        grpc.StatusCode.PERMISSION_DENIED: 403,
        grpc.StatusCode.UNAUTHENTICATED: 401,
        grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
        grpc.StatusCode.FAILED_PRECONDITION: 400,
        grpc.StatusCode.ABORTED: 409,
        grpc.StatusCode.OUT_OF_RANGE: 400,
        grpc.StatusCode.UNIMPLEMENTED: 501,
        grpc.StatusCode.INTERNAL: 500,
        grpc.StatusCode.UNAVAILABLE: 503,
        grpc.StatusCode.DATA_LOSS: 500,
    }
)

# Where REST answers differ from the table, and why (each raised with `http_status=`).
REST_OVERRIDES: Mapping[str, str] = MappingProxyType(
    {
        "GET /v1/jobs/{job_id}/mp3 409": (
            "FAILED_PRECONDITION while the job is not DONE is 409 Conflict, not 400: the request"
            " is fine, the resource is not in the state to serve it yet"
        ),
        "POST /v1/videos 413": (
            "RESOURCE_EXHAUSTED for a video over MAX_UPLOAD_BYTES is 413 Content Too Large, not"
            " 429, which would tell clients to retry later"
        ),
        "POST /v1/videos 415": (
            "INVALID_ARGUMENT for a body that is not a media container (or an unsupported"
            " Content-Type) is 415 Unsupported Media Type"
        ),
        "GET /v1/jobs/{job_id}/mp3 416": (
            "OUT_OF_RANGE for an unsatisfiable Range is 416 with `Content-Range: bytes */size`"
        ),
        "405": "a known path with the wrong method is UNIMPLEMENTED with 405 and `Allow`, as in"
        " grpc-gateway's routing errors",
        "POST /v1/users 201": "CreateUser answers 201 Created",
        "DELETE /v1/jobs/{job_id} 204": "DeleteJob answers 204 No Content, without a body",
        "POST /v1/videos 202": "an upload answers 202 Accepted with a Location header",
    }
)


def code_number(code: grpc.StatusCode) -> int:
    """The numeric gRPC status code (e.g. 5 for NOT_FOUND)."""
    value: tuple[int, str] = code.value
    return value[0]


class ApiError(Exception):
    """A failed call: a gRPC status, a message for the caller, optionally REST specifics.

    `http_status` overrides grpc-gateway's table for the REST face only (see REST_OVERRIDES);
    `headers` are REST response headers (e.g. `Content-Range` on 416).
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        http_status: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status if http_status is not None else HTTP_STATUS[code]
        self.headers: dict[str, str] = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message)

    def __repr__(self) -> str:
        return f"ApiError({self.code.name}, {self.message!r}, http_status={self.http_status})"


def error_body(code: grpc.StatusCode, message: str) -> dict[str, Any]:
    """The JSON error body every 4xx/5xx carries (google.rpc.Status's JSON shape)."""
    return {"code": code_number(code), "message": message, "details": []}


def invalid(message: str) -> ApiError:
    return ApiError(grpc.StatusCode.INVALID_ARGUMENT, message)


def not_found(message: str) -> ApiError:
    return ApiError(grpc.StatusCode.NOT_FOUND, message)


def unavailable(message: str) -> ApiError:
    return ApiError(grpc.StatusCode.UNAVAILABLE, message)


def unauthenticated(message: str) -> ApiError:
    return ApiError(grpc.StatusCode.UNAUTHENTICATED, message)
