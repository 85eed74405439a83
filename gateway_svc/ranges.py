"""HTTP byte ranges (RFC 9110 §14) and download filenames (RFC 6266).

One range per request is served. A `Range` with several ranges is answered with the whole
file (200), which RFC 9110 §14.2 allows ("a server MAY ignore the Range header field"):
multipart/byteranges buys players nothing and complicates every client. A syntactically
invalid `Range` is ignored the same way; a valid but unsatisfiable one is 416.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath
from urllib.parse import quote

_RANGE = re.compile(r"^\s*(\d*)\s*-\s*(\d*)\s*$")


@dataclass(frozen=True)
class ByteRange:
    """Inclusive byte positions, as in `Content-Range: bytes start-end/size`."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end}/{size}"


class RangeNotSatisfiable(ValueError):
    """A valid range that selects nothing of the representation (→ 416)."""

    def __init__(self, size: int) -> None:
        super().__init__(f"the requested range is outside the {size}-byte file")
        self.size = size


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The one range to serve, or None to serve the whole file with 200.

    Raises RangeNotSatisfiable for `bytes=a-` / `bytes=a-b` with a >= size, `bytes=-0`, and any
    range on an empty file.
    """
    if header is None:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or not spec:
        return None
    parts = spec.split(",")
    if len(parts) != 1:
        return None  # several ranges: the whole file (see module docstring)
    match = _RANGE.match(parts[0])
    if match is None:
        return None
    first, last = match.group(1), match.group(2)
    if first == "" and last == "":
        return None
    if first == "":
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable(size)
        return ByteRange(max(0, size - suffix), size - 1)
    start = int(first)
    if last != "" and int(last) < start:
        return None  # invalid: ignored
    if start >= size:
        raise RangeNotSatisfiable(size)
    end = size - 1 if last == "" else min(int(last), size - 1)
    return ByteRange(start, end)


def mp3_filename(original: str) -> str:
    """The original name's stem with `.mp3`: `holiday.final.mov` → `holiday.final.mp3`.

    Directory parts (either separator) are dropped; an empty stem becomes `audio`.
    """
    base = PureWindowsPath(PurePosixPath(original).name).name
    stem = base.rsplit(".", 1)[0] if "." in base.lstrip(".") else base
    stem = "".join(ch for ch in stem if unicodedata.category(ch)[0] != "C").strip()
    return f"{stem or 'audio'}.mp3"


def _ascii_fallback(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name)
    out = []
    for ch in decomposed:
        if unicodedata.combining(ch):
            continue
        if 0x20 <= ord(ch) < 0x7F and ch not in '"\\%;':
            out.append(ch)
        else:
            out.append("_")
    return "".join(out)


def content_disposition(filename: str) -> str:
    """`attachment` with an ASCII `filename=` and the exact `filename*=UTF-8''...` (RFC 6266).

    Control characters (CR/LF included) never reach the header, quotes and backslashes are
    replaced in the quoted fallback, and the UTF-8 form is percent-encoded, so a hostile
    filename cannot inject headers or break out of the parameter.
    """
    clean = "".join(ch for ch in filename if unicodedata.category(ch)[0] != "C")
    fallback = _ascii_fallback(clean)
    encoded = quote(clean, safe="!#$&+-.^_`|~")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"
