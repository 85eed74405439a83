"""The CLI's local pieces: the token file's mode, trace trees, Jaeger JSON, download names."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from mp3mesh_cli import store
from mp3mesh_cli.client import _filename_from
from mp3mesh_cli.traces import load_trace, render_tree, to_jaeger

TRACE = "a" * 32


def span(
    span_id: str, parent: str, service: str, name: str, start: int, end: int
) -> dict[str, object]:
    return {
        "trace_id": TRACE,
        "span_id": span_id,
        "parent_span_id": parent,
        "service": service,
        "name": name,
        "start_ns": start,
        "end_ns": end,
        "kind": "SERVER",
        "status": "UNSET",
        "attributes": {"n": 1},
    }


def test_session_file_is_readable_only_by_its_owner(tmp_path: Path) -> None:
    (tmp_path / "session.json").write_text("{}")
    (tmp_path / "session.json").chmod(0o644)
    path = store.save(store.Session("http://x", "a@example.com", "tok", "later"), tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert store.load(tmp_path) == store.Session("http://x", "a@example.com", "tok", "later")


def test_missing_session_is_none(tmp_path: Path) -> None:
    assert store.load(tmp_path) is None


def test_trace_is_rendered_as_an_indented_tree(tmp_path: Path) -> None:
    spans_file = tmp_path / "spans.jsonl"
    lines = [
        span("1", "", "gateway_svc", "POST /v1/videos", 0, 5_000_000),
        span("2", "1", "auth_svc", "Verify", 1_000_000, 2_000_000),
        {
            "trace_id": "b" * 32,
            "span_id": "9",
            "parent_span_id": "",
            "service": "x",
            "name": "other",
            "start_ns": 0,
            "end_ns": 1,
        },
    ]
    spans_file.write_text("\n".join(json.dumps(line) for line in lines) + "\n{broken")
    spans = load_trace(spans_file, TRACE)
    tree = render_tree(spans).splitlines()
    assert len(tree) == 2
    assert tree[0].startswith("gateway_svc") and "5.0 ms" in tree[0]
    assert tree[1].startswith("  auth_svc")


def test_jaeger_json_has_processes_references_and_microseconds() -> None:
    spans = [
        span("1", "", "gateway_svc", "root", 2_000, 9_000),
        span("2", "1", "auth_svc", "child", 3_000, 4_000),
    ]
    data = to_jaeger(spans, TRACE)["data"][0]
    assert {p["serviceName"] for p in data["processes"].values()} == {"gateway_svc", "auth_svc"}
    child = next(s for s in data["spans"] if s["spanID"] == "2")
    assert child["references"] == [{"refType": "CHILD_OF", "traceID": TRACE, "spanID": "1"}]
    assert (child["startTime"], child["duration"]) == (3, 1)


def test_download_name_prefers_the_utf8_filename() -> None:
    header = "attachment; filename=\"caf_.mp3\"; filename*=UTF-8''caf%C3%A9.mp3"
    assert _filename_from(header) == "café.mp3"
    assert _filename_from('attachment; filename="../../etc/x.mp3"') == "x.mp3"
    assert _filename_from("") == "audio.mp3"
