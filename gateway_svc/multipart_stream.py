"""Streaming `multipart/form-data` parsing: the `file` part's bytes, as they arrive.

Starlette's `request.form()` spools every file part to a temporary file before the handler
sees it — a 2 GB upload would be written to the gateway's disk first. Here python-multipart's
low-level `MultipartParser` is fed the request stream piece by piece and hands back the file
part's bytes as they come, so they can go straight to GridFS; memory is one network piece.

Rules: exactly one file, in the field `file`. A second `file` part, or a file in any other
field, is a 400. Other (text) fields are skipped, up to `MAX_TEXT_FIELD_BYTES` in total.
"""

from __future__ import annotations

import contextlib
import re
from urllib.parse import unquote

import python_multipart
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import parse_options_header

from gateway_svc.errors import ApiError, invalid

FILE_FIELD = "file"
MAX_TEXT_FIELD_BYTES = 64 * 1024
_FILENAME_STAR = re.compile(r"filename\*\s*=\s*([^;]+)", re.IGNORECASE)


def boundary_of(content_type: str) -> bytes:
    """The boundary parameter of a multipart Content-Type; 400 without one."""
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise invalid("multipart/form-data without a boundary")
    return boundary


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _disposition(raw: bytes) -> tuple[str | None, str | None]:
    """(field name, filename) of a part's Content-Disposition; `filename*` wins (RFC 7578)."""
    _, params = parse_options_header(raw)
    name = _decode(params[b"name"]) if b"name" in params else None
    filename = _decode(params[b"filename"]) if b"filename" in params else None
    star = _FILENAME_STAR.search(_decode(raw))
    if star:
        charset, _, rest = star.group(1).strip().strip('"').partition("'")
        _, _, encoded = rest.partition("'")
        with contextlib.suppress(LookupError, UnicodeDecodeError):
            filename = unquote(encoded, encoding=charset or "utf-8", errors="strict")
    return name, filename


class MultipartFileStream:
    """Feed it the body piece by piece; it returns the `file` part's bytes in each piece.

    After the first returned bytes, `filename` and `content_type` are known. `finish()` says
    whether the message ended properly and a file was found (400 otherwise).
    """

    def __init__(self, boundary: bytes) -> None:
        self.filename: str | None = None
        self.content_type: str | None = None
        self._headers: dict[str, bytes] = {}
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._in_file = False
        self._files_seen = 0
        self._text_bytes = 0
        self._out: list[bytes] = []
        self._error: ApiError | None = None
        self._ended = False
        callbacks: dict[str, object] = {
            "on_part_begin": self._on_part_begin,
            "on_header_field": self._on_header_field,
            "on_header_value": self._on_header_value,
            "on_header_end": self._on_header_end,
            "on_headers_finished": self._on_headers_finished,
            "on_part_data": self._on_part_data,
            "on_part_end": self._on_part_end,
            "on_end": self._on_end,
        }
        self._parser = python_multipart.MultipartParser(boundary, callbacks)  # type: ignore[arg-type]

    @property
    def file_found(self) -> bool:
        return self._files_seen > 0

    def feed(self, data: bytes) -> list[bytes]:
        """Parses one piece of the body; returns the file bytes it contained (maybe none)."""
        if self._error is None:
            try:
                self._parser.write(data)
            except MultipartParseError as exc:
                self._error = invalid(f"malformed multipart body: {exc}")
        if self._error is not None:
            raise self._error
        out, self._out = self._out, []
        return out

    def finish(self) -> None:
        """Checks the message is complete and held a file (raises 400 otherwise)."""
        if self._error is not None:
            raise self._error
        self._parser.finalize()
        if not self._ended:
            raise invalid("malformed multipart body: it ends before the closing boundary")
        if not self._files_seen:
            raise invalid(f"no file: send the video in the multipart field {FILE_FIELD!r}")

    # ---- python-multipart callbacks ------------------------------------------------------

    def _fail(self, error: ApiError) -> None:
        if self._error is None:
            self._error = error

    def _on_part_begin(self) -> None:
        self._headers = {}

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _on_header_end(self) -> None:
        name = bytes(self._header_field).decode("latin-1").strip().lower()
        self._headers[name] = bytes(self._header_value).strip()
        self._header_field.clear()
        self._header_value.clear()

    def _on_headers_finished(self) -> None:
        name, filename = _disposition(self._headers.get("content-disposition", b""))
        is_file = name == FILE_FIELD or filename is not None
        self._in_file = False
        if not is_file:
            return
        if name != FILE_FIELD:
            self._fail(invalid(f"unexpected file in field {name!r}: send it in {FILE_FIELD!r}"))
            return
        self._files_seen += 1
        if self._files_seen > 1:
            self._fail(invalid("two files: send exactly one video in the field 'file'"))
            return
        self._in_file = True
        self.filename = filename
        content_type = self._headers.get("content-type")
        self.content_type = content_type.decode("latin-1") if content_type else None

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._error is not None:
            return
        if self._in_file:
            self._out.append(data[start:end])
            return
        self._text_bytes += end - start
        if self._text_bytes > MAX_TEXT_FIELD_BYTES:
            self._fail(invalid("multipart text fields are too large"))

    def _on_part_end(self) -> None:
        self._in_file = False

    def _on_end(self) -> None:
        self._ended = True
