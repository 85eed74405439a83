"""The `google.api.http` rules of a gRPC service, read from its descriptors at start.

Reading the rules from the descriptor (instead of writing routes by hand) keeps the REST
surface and the proto one thing: a new annotated RPC is a new route, and `/openapi.json` is
generated from the same list. Only what grpc-gateway users actually write is supported:
simple `{field}` path variables (also `{field=*}` and `{field=**}`), `body: "*"`, a top-level
`body: "field"`, `response_body`, and `additional_bindings`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from google.api import annotations_pb2, http_pb2  # type: ignore[import-untyped]
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

_VERBS = ("get", "put", "post", "delete", "patch")
_VARIABLE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.]*)(?:=([^}]*))?\}")


class UnsupportedRule(ValueError):
    """A rule uses a feature this shim does not implement (fails at start, not per call)."""


@dataclass(frozen=True)
class HttpRule:
    """One REST binding of one RPC."""

    method: MethodDescriptor
    verb: str  # upper case: GET, POST, ...
    template: str  # as written in the proto: /v1/jobs/{job_id}
    path: str  # Starlette route path: /v1/jobs/{job_id}
    path_fields: tuple[str, ...]
    body: str  # "" (no body), "*" (the whole request) or a top-level field name
    response_body: str  # "" (the whole response) or a top-level field name

    @property
    def name(self) -> str:
        return self.method.name

    @property
    def request_class(self) -> type[Message]:
        return GetMessageClass(self.method.input_type)

    @property
    def response_class(self) -> type[Message]:
        return GetMessageClass(self.method.output_type)


def _starlette_path(template: str, method: MethodDescriptor) -> tuple[str, tuple[str, ...]]:
    fields: list[str] = []

    def replace(match: re.Match[str]) -> str:
        name, pattern = match.group(1), match.group(2)
        if "." in name:
            raise UnsupportedRule(f"{method.full_name}: nested path field {name!r}")
        if name not in method.input_type.fields_by_name:
            raise UnsupportedRule(f"{method.full_name}: path field {name!r} is not in the request")
        fields.append(name)
        if pattern in (None, "*"):
            return "{" + name + "}"
        if pattern == "**":
            return "{" + name + ":path}"
        raise UnsupportedRule(f"{method.full_name}: path pattern {pattern!r}")

    path = _VARIABLE.sub(replace, template)
    if ":" in path.replace(":path}", "}"):
        raise UnsupportedRule(f"{method.full_name}: custom verbs (':verb') are not supported")
    return path, tuple(fields)


def _one(method: MethodDescriptor, rule: http_pb2.HttpRule) -> HttpRule:
    pattern = rule.WhichOneof("pattern")
    if pattern not in _VERBS:
        raise UnsupportedRule(f"{method.full_name}: pattern {pattern!r} is not supported")
    template = str(getattr(rule, pattern))
    path, path_fields = _starlette_path(template, method)
    for field in (rule.body, rule.response_body):
        if field not in ("", "*") and "." in field:
            raise UnsupportedRule(f"{method.full_name}: nested body field {field!r}")
    if rule.body not in ("", "*") and rule.body not in method.input_type.fields_by_name:
        raise UnsupportedRule(f"{method.full_name}: body field {rule.body!r} is not in the request")
    if rule.response_body and rule.response_body not in method.output_type.fields_by_name:
        raise UnsupportedRule(f"{method.full_name}: response_body {rule.response_body!r} unknown")
    return HttpRule(
        method=method,
        verb=pattern.upper(),
        template=template,
        path=path,
        path_fields=path_fields,
        body=rule.body,
        response_body=rule.response_body,
    )


def http_rules(service: ServiceDescriptor) -> list[HttpRule]:
    """Every REST binding of the service's unary methods, in declaration order.

    Streaming methods are skipped even when annotated: like grpc-gateway users, we expose
    uploads and downloads through hand-written routes.
    """
    rules: list[HttpRule] = []
    for method in service.methods:
        if method.client_streaming or method.server_streaming:
            continue
        options = method.GetOptions()
        if not options.HasExtension(annotations_pb2.http):
            continue
        rule = options.Extensions[annotations_pb2.http]
        for binding in _with_additional(rule):
            rules.append(_one(method, binding))
    return rules


def _with_additional(rule: http_pb2.HttpRule) -> Iterator[http_pb2.HttpRule]:
    yield rule
    yield from rule.additional_bindings
