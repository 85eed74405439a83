"""HTTP request parts → request message, response message → JSON, per grpc-gateway's rules.

* Path variables set their fields first; a body (for `body: "*"`) is parsed with protobuf's
  JSON mapping (`ignore_unknown_fields=False`: a typo is a 400, not silently dropped; both
  `page_size` and `pageSize` are accepted); query parameters fill the remaining fields
  (grpc-gateway's behaviour for GET/DELETE: `?page_size=5&page_token=...`).
* Responses use the proto field names (`job_id`, as in DESIGN.md's table), enum names
  (`JOB_STATE_DONE`), Timestamps as RFC 3339 strings, 64-bit integers as strings
  (proto3 JSON), and omit fields at their default value, as grpc-gateway does by default.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, cast

import grpc
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from gateway_svc.errors import ApiError, invalid
from gateway_svc.http_rules import HttpRule

_INTEGER_TYPES = {
    FieldDescriptor.TYPE_INT32,
    FieldDescriptor.TYPE_INT64,
    FieldDescriptor.TYPE_UINT32,
    FieldDescriptor.TYPE_UINT64,
    FieldDescriptor.TYPE_SINT32,
    FieldDescriptor.TYPE_SINT64,
    FieldDescriptor.TYPE_FIXED32,
    FieldDescriptor.TYPE_FIXED64,
    FieldDescriptor.TYPE_SFIXED32,
    FieldDescriptor.TYPE_SFIXED64,
}
_FLOAT_TYPES = {FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT}
_JSON_TYPES = ("application/json",)


def is_json_content_type(content_type: str | None) -> bool:
    """True for a missing Content-Type, application/json and any `+json` type."""
    if not content_type:
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    return media in _JSON_TYPES or media.endswith("+json")


def _field_by_param(message: Message, name: str) -> FieldDescriptor | None:
    descriptor = message.DESCRIPTOR
    for candidate in descriptor.fields:
        if name in (candidate.name, candidate.json_name):
            return cast(FieldDescriptor, candidate)
    return None


def _scalar(field: FieldDescriptor, name: str, raw: str) -> Any:
    """A query/path string as the JSON value json_format expects for this field."""
    if field.type in _INTEGER_TYPES:
        try:
            return int(raw, 10)
        except ValueError:
            raise invalid(f"{name}={raw!r} is not an integer") from None
    if field.type in _FLOAT_TYPES:
        try:
            return float(raw)
        except ValueError:
            raise invalid(f"{name}={raw!r} is not a number") from None
    if field.type == FieldDescriptor.TYPE_BOOL:
        lowered = raw.lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0"):
            return False
        raise invalid(f"{name}={raw!r} is not a boolean")
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        raise invalid(f"{name} cannot be set from the query string")
    return raw  # strings, bytes (base64), enums (by name or number) as json_format parses them


def _parse_dict(values: dict[str, Any], message: Message, what: str) -> None:
    try:
        json_format.ParseDict(values, message, ignore_unknown_fields=False)
    except json_format.ParseError as exc:
        raise invalid(f"invalid {what}: {exc}") from None


def decode_request(
    rule: HttpRule,
    *,
    path_params: Mapping[str, str],
    query: Iterable[tuple[str, str]],
    body: bytes,
    content_type: str | None,
) -> Message:
    """The request message for one HTTP call; ApiError (400/415) when the input is bad."""
    message = rule.request_class()
    taken: set[str] = set(rule.path_fields)
    if rule.body:
        if body.strip():
            if not is_json_content_type(content_type):
                raise ApiError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"Content-Type {content_type!r} is not supported; send application/json",
                    http_status=415,
                )
            target = message if rule.body == "*" else getattr(message, rule.body)
            try:
                text = body.decode("utf-8")
                json.loads(text)  # a clearer message for malformed JSON than ParseError's
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise invalid(f"malformed JSON body: {exc}") from None
            try:
                json_format.Parse(text, target, ignore_unknown_fields=False)
            except json_format.ParseError as exc:
                raise invalid(f"invalid request body: {exc}") from None
        if rule.body == "*":
            taken.update(message.DESCRIPTOR.fields_by_name)
        else:
            taken.add(rule.body)
    query_values: dict[str, Any] = {}
    for name, raw in query:
        field = _field_by_param(message, name)
        if field is None or field.name in taken:
            raise invalid(f"unknown query parameter {name!r}")
        value = _scalar(field, name, raw)
        if field.is_repeated:
            query_values.setdefault(field.name, []).append(value)
        elif field.name in query_values:
            raise invalid(f"query parameter {name!r} given more than once")
        else:
            query_values[field.name] = value
    _parse_dict(query_values, message, "query parameters")
    path_values: dict[str, Any] = {}
    for name in rule.path_fields:
        path_field = cast(FieldDescriptor, message.DESCRIPTOR.fields_by_name[name])
        path_values[name] = _scalar(path_field, name, path_params.get(name, ""))
    _parse_dict(path_values, message, "path")
    return message


def message_to_json(message: Message) -> dict[str, Any]:
    """protobuf's JSON mapping with the proto field names (what DESIGN.md's table shows)."""
    result: dict[str, Any] = json_format.MessageToDict(message, preserving_proto_field_name=True)
    return result


def encode_response(rule: HttpRule, message: Message) -> Any:
    """The JSON value for the response, honouring `response_body`."""
    if rule.response_body:
        return message_to_json(getattr(message, rule.response_body))
    return message_to_json(message)
