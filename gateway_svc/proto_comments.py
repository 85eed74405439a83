"""Leading `//` comments of a .proto file, by fully-qualified element name (best effort).

Generated `_pb2` modules carry descriptors without source info, so the comments that document
the API are not there at run time. When the .proto sources are present (a checkout, `make up`)
this small scanner reads them so `/openapi.json` has descriptions; when they are not (a slim
image) the document is simply without them. It understands the subset of syntax our protos
use: `package`, `service`, `rpc`, `message`, `enum`, fields, enum values, one declaration per
line.
"""

from __future__ import annotations

import re
from pathlib import Path

_PACKAGE = re.compile(r"^\s*package\s+([\w.]+)\s*;")
_BLOCK = re.compile(r"^\s*(message|enum|service|oneof)\s+(\w+)\s*\{")
_RPC = re.compile(r"^\s*rpc\s+(\w+)\s*\(")
_FIELD = re.compile(r"^\s*(?:repeated\s+|optional\s+)?[\w.<>, ]+?\s+(\w+)\s*=\s*\d+")
_ENUM_VALUE = re.compile(r"^\s*([A-Z][A-Z0-9_]*)\s*=\s*-?\d+")


def read_comments(path: Path) -> dict[str, str]:
    """{"pkg.Message": "...", "pkg.Message.field": "...", "pkg.Service.Rpc": "..."}."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return {}
    comments: dict[str, str] = {}
    package = ""
    stack: list[tuple[str, str, int]] = []  # (kind, name, brace depth inside it)
    depth = 0
    pending: list[str] = []

    def scope() -> str:
        names = [name for kind, name, _ in stack if kind in ("message", "enum", "service")]
        return ".".join(filter(None, [package, *names]))

    def innermost() -> str:
        return stack[-1][0] if stack else ""

    for line in lines:
        stripped = line.strip()
        if stripped.startswith("//"):
            pending.append(stripped[2:].strip())
            continue
        text = " ".join(pending).strip()
        pending = []
        code = line.split("//", 1)[0]
        if match := _PACKAGE.match(code):
            package = match.group(1)
        elif match := _BLOCK.match(code):
            kind, name = match.group(1), match.group(2)
            if kind != "oneof" and text:
                comments[f"{scope()}.{name}"] = text
            stack.append((kind, name, depth + 1))
        elif match := _RPC.match(code):
            if text:
                comments[f"{scope()}.{match.group(1)}"] = text
            if "{" in code:
                stack.append(("rpc", match.group(1), depth + 1))
        else:
            element = None
            if innermost() == "enum":
                element = _ENUM_VALUE.match(code)
            elif innermost() in ("message", "oneof") and not stripped.startswith(
                ("option", "reserved")
            ):
                element = _FIELD.match(code)
            if element and text:
                comments[f"{scope()}.{element.group(1)}"] = text
        depth += code.count("{") - code.count("}")
        while stack and stack[-1][2] > depth:
            stack.pop()
    return comments
