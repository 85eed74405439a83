"""Streaming multipart: the file's bytes come out as the body goes in, whatever the pieces."""

from __future__ import annotations

import random

import pytest

from gateway_svc.errors import ApiError
from gateway_svc.multipart_stream import MultipartFileStream, boundary_of

BOUNDARY = b"----mp3meshBoundary7MA4YWxk"


def part(name: str, data: bytes, filename: str | None = None, extra: str = "") -> bytes:
    disposition = f'form-data; name="{name}"'
    if filename is not None:
        disposition += f'; filename="{filename}"'
    headers = f"Content-Disposition: {disposition}\r\n{extra}"
    if filename is not None:
        headers += "Content-Type: video/mp4\r\n"
    return b"--" + BOUNDARY + b"\r\n" + headers.encode() + b"\r\n" + data + b"\r\n"


def body(*parts: bytes) -> bytes:
    return b"".join(parts) + b"--" + BOUNDARY + b"--\r\n"


def feed_in_pieces(message: bytes, piece: int) -> tuple[MultipartFileStream, bytes]:
    stream = MultipartFileStream(BOUNDARY)
    out = bytearray()
    for start in range(0, len(message), piece):
        for data in stream.feed(message[start : start + piece]):
            out += data
    stream.finish()
    return stream, bytes(out)


@pytest.mark.parametrize("piece", [1, 7, 100, 65536, 10_000_000])
def test_file_bytes_come_out_intact_whatever_the_piece_size(piece: int) -> None:
    data = random.Random(1).randbytes(200_000) + b"\r\n--" + b"not-the-boundary" + b"\r\n"
    message = body(part("note", b"hello"), part("file", data, "clip.mp4"), part("x", b"y"))
    stream, out = feed_in_pieces(message, piece)
    assert out == data
    assert stream.filename == "clip.mp4"
    assert stream.content_type == "video/mp4"


def test_rfc5987_filename_wins() -> None:
    message = body(
        part(
            "file",
            b"abc",
            "fallback.mp4",
        ).replace(b'filename="fallback.mp4"', b"filename=\"x.mp4\"; filename*=UTF-8''f%C3%AAte.mp4")
    )
    stream, _ = feed_in_pieces(message, 1000)
    assert stream.filename == "fête.mp4"


def _error_of(message: bytes) -> ApiError:
    with pytest.raises(ApiError) as caught:
        feed_in_pieces(message, 1000)
    return caught.value


def test_two_files_are_refused() -> None:
    error = _error_of(body(part("file", b"a", "a.mp4"), part("file", b"b", "b.mp4")))
    assert error.http_status == 400 and "two files" in error.message


def test_a_file_in_another_field_is_refused() -> None:
    error = _error_of(body(part("video", b"a", "a.mp4")))
    assert error.http_status == 400 and "'video'" in error.message


def test_no_file_is_refused() -> None:
    error = _error_of(body(part("note", b"hello")))
    assert error.http_status == 400 and "no file" in error.message


def test_truncated_body_is_refused() -> None:
    message = body(part("file", b"abc", "a.mp4"))[:-10]
    error = _error_of(message)
    assert "ends before" in error.message


def test_huge_text_fields_are_refused() -> None:
    error = _error_of(body(part("note", b"x" * 100_000), part("file", b"a", "a.mp4")))
    assert "too large" in error.message


def test_empty_file_part_is_found_but_yields_nothing() -> None:
    stream, out = feed_in_pieces(body(part("file", b"", "a.mp4")), 1000)
    assert stream.file_found and out == b""


def test_boundary_of() -> None:
    assert boundary_of('multipart/form-data; boundary="abc def"') == b"abc def"
    with pytest.raises(ApiError):
        boundary_of("multipart/form-data")
