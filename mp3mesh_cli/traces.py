"""Reading one trace back from the local span file: a tree for people, JSON for Jaeger.

On a machine without Jaeger the services write spans as JSON lines (observability.jsonfile);
this turns the spans of one trace id into an indented tree, and into the JSON layout the
Jaeger UI opens through "JSON File" upload (the shape of its /api/traces answer).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

Span = dict[str, Any]


def load_trace(span_file: Path, trace_id: str) -> list[Span]:
    spans: list[Span] = []
    with span_file.open() as handle:
        for line in handle:
            try:
                span = json.loads(line)
            except ValueError:
                continue  # a line cut by a crash is not a reason to show nothing
            if span.get("trace_id") == trace_id:
                spans.append(span)
    return sorted(spans, key=lambda span: int(span["start_ns"]))


def _children(spans: Iterable[Span]) -> tuple[list[Span], dict[str, list[Span]]]:
    spans = list(spans)
    known = {span["span_id"] for span in spans}
    roots: list[Span] = []
    children: dict[str, list[Span]] = defaultdict(list)
    for span in spans:
        parent = span.get("parent_span_id") or ""
        if parent and parent in known:
            children[parent].append(span)
        else:
            roots.append(span)
    return roots, children


def render_tree(spans: list[Span]) -> str:
    """One line per span: indentation for nesting, then service, name and duration."""
    roots, children = _children(spans)
    lines: list[str] = []

    def walk(span: Span, depth: int) -> None:
        duration_ms = (int(span["end_ns"]) - int(span["start_ns"])) / 1e6
        status = "" if span.get("status") != "ERROR" else "  [ERROR]"
        lines.append(
            f"{'  ' * depth}{span['service']:<14} {span['name']:<48} {duration_ms:9.1f} ms{status}"
        )
        for child in children.get(span["span_id"], []):
            walk(child, depth + 1)

    for root in roots:
        walk(root, 0)
    return "\n".join(lines)


def _tag(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"key": key, "type": "bool", "value": value}
    if isinstance(value, int):
        return {"key": key, "type": "int64", "value": value}
    if isinstance(value, float):
        return {"key": key, "type": "float64", "value": value}
    return {"key": key, "type": "string", "value": str(value)}


def to_jaeger(spans: list[Span], trace_id: str) -> dict[str, Any]:
    """The Jaeger UI's JSON: {"data": [{traceID, spans, processes}]}, times in microseconds."""
    processes: dict[str, str] = {}
    for span in spans:
        processes.setdefault(span["service"], f"p{len(processes) + 1}")
    known = {span["span_id"] for span in spans}
    jaeger_spans = []
    for span in spans:
        references = []
        if span.get("parent_span_id") in known:
            references.append(
                {"refType": "CHILD_OF", "traceID": trace_id, "spanID": span["parent_span_id"]}
            )
        tags = [_tag(key, value) for key, value in span.get("attributes", {}).items()]
        tags.append(_tag("span.kind", str(span.get("kind", "")).lower()))
        if span.get("status") == "ERROR":
            tags.append(_tag("error", True))
        jaeger_spans.append(
            {
                "traceID": trace_id,
                "spanID": span["span_id"],
                "operationName": span["name"],
                "references": references,
                "startTime": int(span["start_ns"]) // 1000,
                "duration": (int(span["end_ns"]) - int(span["start_ns"])) // 1000,
                "tags": tags,
                "logs": [],
                "processID": processes[span["service"]],
                "warnings": None,
            }
        )
    return {
        "data": [
            {
                "traceID": trace_id,
                "spans": jaeger_spans,
                "processes": {
                    pid: {"serviceName": service, "tags": []} for service, pid in processes.items()
                },
                "warnings": None,
            }
        ]
    }
