"""HTTP Range parsing and download filenames."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from gateway_svc.ranges import (
    ByteRange,
    RangeNotSatisfiable,
    content_disposition,
    mp3_filename,
    parse_range,
)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-99", ByteRange(0, 99)),
        ("bytes=100-", ByteRange(100, 999)),
        ("bytes=-100", ByteRange(900, 999)),
        ("bytes=-5000", ByteRange(0, 999)),  # suffix longer than the file: all of it
        ("bytes=990-5000", ByteRange(990, 999)),  # end clamped
        ("BYTES = 1-2", ByteRange(1, 2)),  # lenient about case and spaces
        ("bytes=5-1", None),  # invalid: ignored
        ("bytes=0-1,4-5", None),  # several ranges: the whole file
        ("items=0-1", None),
        ("bytes=a-b", None),
        ("bytes=-", None),
        ("bytes=", None),
    ],
)
def test_parse_range(header: str | None, expected: ByteRange | None) -> None:
    assert parse_range(header, 1000) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=2000-3000", "bytes=-0"])
def test_unsatisfiable(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, 1000)


def test_any_range_of_an_empty_file_is_unsatisfiable() -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range("bytes=0-", 0)
    with pytest.raises(RangeNotSatisfiable):
        parse_range("bytes=-1", 0)


def test_content_range() -> None:
    assert ByteRange(5, 9).content_range(10) == "bytes 5-9/10"
    assert ByteRange(5, 9).length == 5


@pytest.mark.parametrize(
    ("original", "expected"),
    [
        ("holiday.mp4", "holiday.mp3"),
        ("holiday.final.mov", "holiday.final.mp3"),
        ("no-extension", "no-extension.mp3"),
        ("C:\\Users\\x\\clip.avi", "clip.mp3"),
        ("../../etc/passwd.mkv", "passwd.mp3"),
        (".hidden", ".hidden.mp3"),
        ("", "audio.mp3"),
        ("\r\n.mp4", "audio.mp3"),
    ],
)
def test_mp3_filename(original: str, expected: str) -> None:
    assert mp3_filename(original) == expected


def test_content_disposition_plain() -> None:
    assert content_disposition("song.mp3") == (
        "attachment; filename=\"song.mp3\"; filename*=UTF-8''song.mp3"
    )


def test_content_disposition_cannot_be_broken_out_of() -> None:
    header = content_disposition('évé "q" \\ ;x\r\nSet-Cookie: a=b.mp3')
    assert "\r" not in header and "\n" not in header
    fallback = header.split('filename="', 1)[1].split('"', 1)[0]
    assert fallback.isascii() and '"' not in fallback and "\\" not in fallback
    assert fallback.startswith("eve _q_ _ _x")
    encoded = header.split("filename*=UTF-8''", 1)[1]
    assert " " not in encoded and ";" not in encoded and '"' not in encoded
    assert unquote(encoded) == 'évé "q" \\ ;xSet-Cookie: a=b.mp3'
