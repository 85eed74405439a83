"""`/openapi.json` (OpenAPI 3.1), generated from the same descriptors as the REST routes.

The JSON routes come from the `google.api.http` rules; schemas from the message descriptors
(proto3 JSON mapping: proto field names, enums as strings, 64-bit integers as strings,
Timestamps as date-time strings, `field_behavior` REQUIRED/INPUT_ONLY/OUTPUT_ONLY as
required/writeOnly/readOnly). Descriptions come from the .proto comments when the sources are
on disk (see proto_comments.py). The hand-written routes (upload, download, the tutorial's,
health) are described here by hand, with the REST status overrides.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from google.api import field_behavior_pb2  # type: ignore[import-untyped]
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from gateway_svc.core import PUBLIC_METHODS
from gateway_svc.errors import HTTP_STATUS, REST_OVERRIDES
from gateway_svc.http_rules import HttpRule
from gateway_svc.proto_comments import read_comments
from gateway_svc.rest_shim import SUCCESS_STATUS

PROTO_ROOT = Path(__file__).resolve().parents[1] / "proto"
ERROR_REF = {"$ref": "#/components/schemas/Error"}
BEARER: list[dict[str, list[str]]] = [{"bearer": []}]

_INT32 = {
    FieldDescriptor.TYPE_INT32,
    FieldDescriptor.TYPE_SINT32,
    FieldDescriptor.TYPE_SFIXED32,
    FieldDescriptor.TYPE_UINT32,
    FieldDescriptor.TYPE_FIXED32,
}
_INT64 = {
    FieldDescriptor.TYPE_INT64,
    FieldDescriptor.TYPE_SINT64,
    FieldDescriptor.TYPE_SFIXED64,
    FieldDescriptor.TYPE_UINT64,
    FieldDescriptor.TYPE_FIXED64,
}
_WELL_KNOWN: Mapping[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": r"^-?\d+(\.\d+)?s$"},
    "google.protobuf.Empty": {"type": "object"},
}


class SchemaBuilder:
    """Collects component schemas for messages and enums, following references."""

    def __init__(self, comments: Mapping[str, str]) -> None:
        self._comments = comments
        self.schemas: dict[str, dict[str, Any]] = {}

    def ref(self, descriptor: Descriptor | EnumDescriptor) -> dict[str, Any]:
        name = descriptor.full_name
        if name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[name])
        if name not in self.schemas:
            self.schemas[name] = {}  # placeholder first: recursive messages terminate
            if isinstance(descriptor, EnumDescriptor):
                self.schemas[name] = self._enum(descriptor)
            else:
                self.schemas[name] = self._message(descriptor)
        return {"$ref": f"#/components/schemas/{name}"}

    def _describe(self, schema: dict[str, Any], full_name: str) -> dict[str, Any]:
        text = self._comments.get(full_name)
        if text:
            schema["description"] = text
        return schema

    def _enum(self, descriptor: EnumDescriptor) -> dict[str, Any]:
        names = [value.name for value in descriptor.values]
        lines = [
            f"- `{value.name}`: {self._comments.get(f'{descriptor.full_name}.{value.name}', '')}"
            for value in descriptor.values
        ]
        schema: dict[str, Any] = {"type": "string", "enum": names}
        self._describe(schema, descriptor.full_name)
        schema["description"] = (schema.get("description", "") + "\n\n" + "\n".join(lines)).strip()
        return schema

    def _message(self, descriptor: Descriptor) -> dict[str, Any]:
        properties: dict[str, Any] = {}
        required: list[str] = []
        for field in descriptor.fields:
            schema = self.field(field)
            behaviors = set(field.GetOptions().Extensions[field_behavior_pb2.field_behavior])
            if field_behavior_pb2.REQUIRED in behaviors:
                required.append(field.name)
            if field_behavior_pb2.INPUT_ONLY in behaviors:
                schema["writeOnly"] = True
            if field_behavior_pb2.OUTPUT_ONLY in behaviors:
                schema["readOnly"] = True
            properties[field.name] = self._describe(schema, f"{descriptor.full_name}.{field.name}")
        message: dict[str, Any] = {"type": "object", "properties": properties}
        if required:
            message["required"] = required
        return self._describe(message, descriptor.full_name)

    def field(self, field: FieldDescriptor) -> dict[str, Any]:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value = field.message_type.fields_by_name["value"]
            return {"type": "object", "additionalProperties": self.scalar(value)}
        item = self.scalar(field)
        if field.is_repeated:
            return {"type": "array", "items": item}
        return item

    def scalar(self, field: FieldDescriptor) -> dict[str, Any]:
        if field.type in _INT32:
            return {"type": "integer", "format": "int32"}
        if field.type in _INT64:
            return {"type": "string", "format": "int64"}
        if field.type == FieldDescriptor.TYPE_DOUBLE:
            return {"type": "number", "format": "double"}
        if field.type == FieldDescriptor.TYPE_FLOAT:
            return {"type": "number", "format": "float"}
        if field.type == FieldDescriptor.TYPE_BOOL:
            return {"type": "boolean"}
        if field.type == FieldDescriptor.TYPE_BYTES:
            return {"type": "string", "contentEncoding": "base64"}
        if field.type == FieldDescriptor.TYPE_ENUM and field.enum_type is not None:
            return self.ref(field.enum_type)
        if field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type is not None:
            return self.ref(field.message_type)
        return {"type": "string"}


def _comments_for(files: Iterable[str]) -> dict[str, str]:
    comments: dict[str, str] = {}
    for name in files:
        comments.update(read_comments(PROTO_ROOT / name))
    return comments


def _error(description: str, headers: Mapping[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": ERROR_REF}},
    }
    if headers:
        response["headers"] = dict(headers)
    return response


def _errors(*statuses: int) -> dict[str, Any]:
    texts = {
        400: "Invalid argument (the message says which)",
        401: "Missing, invalid or expired credentials",
        404: "Not found — unknown, or belongs to another user",
        409: "Conflict",
        413: "Too large",
        415: "Unsupported media type",
        416: "Range not satisfiable",
        429: "Too many attempts",
        503: "A dependency (auth, MongoDB, RabbitMQ) is unavailable",
        504: "The auth service did not answer in time",
    }
    out: dict[str, Any] = {}
    for status in statuses:
        if status == 401:
            out["401"] = _error(texts[401], {"WWW-Authenticate": {"schema": {"type": "string"}}})
        else:
            out[str(status)] = _error(texts[status])
    out["default"] = _error("Any other error; `code` is the gRPC status code")
    return out


def _rule_operation(rule: HttpRule, builder: SchemaBuilder, comments: Mapping[str, str]) -> Any:
    method = rule.method
    request = method.input_type
    operation: dict[str, Any] = {
        "operationId": method.name if rule.verb != "HEAD" else f"{method.name}Head",
        "tags": [method.containing_service.name],
        "summary": method.name,
    }
    text = comments.get(method.full_name)
    if text:
        operation["description"] = text
    parameters: list[dict[str, Any]] = []
    for name in rule.path_fields:
        schema = builder.field(request.fields_by_name[name])
        parameters.append({"name": name, "in": "path", "required": True, "schema": schema})
    if not rule.body:
        for field in request.fields:
            if field.name in rule.path_fields or field.type == FieldDescriptor.TYPE_MESSAGE:
                continue
            parameter: dict[str, Any] = {
                "name": field.name,
                "in": "query",
                "required": False,
                "schema": builder.field(field),
            }
            description = comments.get(f"{request.full_name}.{field.name}")
            if description:
                parameter["description"] = description
            parameters.append(parameter)
    if parameters:
        operation["parameters"] = parameters
    if rule.body:
        body_type = request if rule.body == "*" else request.fields_by_name[rule.body].message_type
        assert body_type is not None
        operation["requestBody"] = {
            "required": rule.name != "Login",
            "content": {"application/json": {"schema": builder.ref(body_type)}},
        }
    status = SUCCESS_STATUS.get(rule.name, 200)
    if status == 204:
        success: dict[str, Any] = {"description": "Done (no content)"}
    else:
        response_type: Descriptor | None = method.output_type
        if rule.response_body:
            response_type = method.output_type.fields_by_name[rule.response_body].message_type
        assert response_type is not None
        success = {
            "description": "OK" if status == 200 else "Created",
            "content": {"application/json": {"schema": builder.ref(response_type)}},
        }
    operation["responses"] = {str(status): success, **_errors(400, 401, 404, 503, 504)}
    if rule.name in PUBLIC_METHODS:
        operation["security"] = [{}, {"basic": []}] if rule.name == "Login" else []
    else:
        operation["security"] = BEARER
    return operation


def _hand_written(builder: SchemaBuilder, upload_response: Descriptor) -> dict[str, Any]:
    upload_ref = builder.ref(upload_response)
    filename = {
        "name": "filename",
        "in": "query",
        "description": "The video's name (required with a raw body; multipart uses the part's)",
        "schema": {"type": "string"},
    }
    bitrate = {
        "name": "bitrate_kbps",
        "in": "query",
        "description": "MP3 bitrate in kb/s, 96-320 (default 192)",
        "schema": {"type": "integer", "minimum": 96, "maximum": 320, "default": 192},
    }
    binary = {"schema": {"type": "string", "contentMediaType": "application/octet-stream"}}
    upload = {
        "operationId": "UploadVideoRest",
        "tags": ["GatewayService"],
        "summary": "Upload a video (streamed into storage; the conversion is queued)",
        "description": (
            "Multipart field `file` (exactly one file) or a raw body with `?filename=`. The"
            " first bytes must be a media container. 202 even if RabbitMQ is down: the job is"
            " kept in an outbox and queued when the broker is back. Overrides of grpc-gateway's"
            " table: 202 Accepted, 413 over the size cap (RESOURCE_EXHAUSTED), 415 not a media"
            " container (INVALID_ARGUMENT)."
        ),
        "security": BEARER,
        "parameters": [filename, bitrate],
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"file": {"type": "string", "format": "binary"}},
                        "required": ["file"],
                    }
                },
                "application/octet-stream": binary,
                "video/*": binary,
                "audio/*": binary,
            },
        },
        "responses": {
            "202": {
                "description": "Stored and queued",
                "headers": {"Location": {"schema": {"type": "string", "format": "uri"}}},
                "content": {"application/json": {"schema": upload_ref}},
            },
            **_errors(400, 401, 413, 415, 503, 504),
        },
    }
    mp3_headers = {
        name: {"schema": {"type": "string"}}
        for name in ("Content-Disposition", "ETag", "Accept-Ranges", "Content-Length")
    }
    mp3_content = {"audio/mpeg": {"schema": {"type": "string", "format": "binary"}}}
    download = {
        "operationId": "DownloadMp3Rest",
        "tags": ["GatewayService"],
        "summary": "Download a finished job's MP3 (Range supported)",
        "description": (
            "Overrides of grpc-gateway's table: 409 (not 400) while the job is not DONE"
            " (FAILED_PRECONDITION), 416 for an unsatisfiable Range (OUT_OF_RANGE, with"
            " `Content-Range: bytes */size`). Several ranges are answered with the whole file."
        ),
        "security": BEARER,
        "parameters": [
            {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}},
            {"name": "Range", "in": "header", "schema": {"type": "string"}},
        ],
        "responses": {
            "200": {"description": "The MP3", "headers": mp3_headers, "content": mp3_content},
            "206": {
                "description": "Part of the MP3",
                "headers": {**mp3_headers, "Content-Range": {"schema": {"type": "string"}}},
                "content": mp3_content,
            },
            **_errors(401, 404, 409, 416, 503, 504),
        },
    }
    head = {**download, "operationId": "DownloadMp3RestHead", "summary": "MP3 headers only"}
    tutorial_download = {
        **download,
        "operationId": "TutorialDownload",
        "summary": "The tutorial's download route",
        "parameters": [
            {"name": "fid", "in": "query", "required": True, "schema": {"type": "string"}}
        ],
    }
    return {
        "/v1/videos": {"post": upload},
        "/v1/jobs/{job_id}/mp3": {"get": download, "head": head},
        "/login": {
            "post": {
                "operationId": "TutorialLogin",
                "tags": ["tutorial"],
                "summary": "HTTP Basic → the access token as plain text",
                "security": [{"basic": []}],
                "responses": {
                    "200": {
                        "description": "The token",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    **_errors(401, 503, 504),
                },
            }
        },
        "/upload": {
            "post": {
                **upload,
                "operationId": "TutorialUpload",
                "tags": ["tutorial"],
                "summary": "The tutorial's upload route (same as POST /v1/videos)",
            }
        },
        "/download": {"get": {**tutorial_download, "tags": ["tutorial"]}},
        "/healthz": {
            "get": {
                "operationId": "Healthz",
                "tags": ["health"],
                "summary": "Liveness: 200 while the process runs",
                "security": [],
                "responses": {"200": {"description": "Alive"}},
            }
        },
        "/readyz": {
            "get": {
                "operationId": "Readyz",
                "tags": ["health"],
                "summary": "Readiness: auth, MongoDB and RabbitMQ reachable (200) or not (503)",
                "security": [],
                "responses": {
                    "200": {"description": "Ready", "content": {"application/json": {}}},
                    "503": {"description": "Not ready", "content": {"application/json": {}}},
                },
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "OpenApi",
                "tags": ["health"],
                "summary": "This document",
                "security": [],
                "responses": {"200": {"description": "OpenAPI 3.1"}},
            }
        },
    }


def build_openapi(
    rules: Sequence[HttpRule], *, base_url: str, upload_response: Any
) -> dict[str, Any]:
    """The whole document; built once at start."""
    files = {rule.method.containing_service.file.name for rule in rules}
    for rule in rules:
        files.update(dep.name for dep in rule.method.containing_service.file.dependencies)
    comments = _comments_for(sorted(files))
    builder = SchemaBuilder(comments)
    paths: dict[str, dict[str, Any]] = {}
    for rule in rules:
        paths.setdefault(rule.template, {})[rule.verb.lower()] = _rule_operation(
            rule, builder, comments
        )
    for path, operations in _hand_written(builder, upload_response).items():
        paths.setdefault(path, {}).update(operations)
    overrides = "\n".join(f"- {key}: {why}" for key, why in REST_OVERRIDES.items())
    table = ", ".join(f"{code.name} {status}" for code, status in HTTP_STATUS.items())
    builder.schemas["Error"] = {
        "type": "object",
        "description": "Every 4xx/5xx body (google.rpc.Status in JSON).",
        "properties": {
            "code": {"type": "integer", "description": "gRPC status code number"},
            "message": {"type": "string"},
            "details": {"type": "array", "items": {"type": "object"}},
        },
        "required": ["code", "message", "details"],
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "mp3mesh",
            "version": "v1",
            "description": (
                "Upload videos, get MP3s. JSON follows protobuf's JSON mapping with proto field"
                f" names. Errors map gRPC codes to HTTP like grpc-gateway: {table}."
                f" Exceptions:\n{overrides}"
            ),
        },
        "servers": [{"url": base_url}],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(builder.schemas.items())),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "basic": {"type": "http", "scheme": "basic"},
            },
        },
    }
