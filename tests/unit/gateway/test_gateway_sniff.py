"""Media sniffing: every container we promise, and the things that only look like one."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway_svc import sniff

MEDIA = Path(__file__).resolve().parents[3].parent / "shared" / "media"


def _ts() -> bytes:
    packet = b"\x47" + bytes(187)
    return packet * 2


CASES = {
    "mp4": (b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00", sniff.MP4),
    "m4a": (b"\x00\x00\x00\x1cftypM4A \x00\x00\x00\x00", sniff.M4A),
    "3gp": (b"\x00\x00\x00\x14ftyp3gp5\x00\x00\x00\x00", sniff.THREE_GP),
    "mov": (b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00", sniff.QUICKTIME),
    "old-quicktime": (b"\x00\x00\x6d\x2amoov\x00\x00\x00\x6c", sniff.QUICKTIME),
    "webm": (b"\x1a\x45\xdf\xa3\x01\x00\x00\x00\x00\x00\x00\x1fB\x82\x84webm", sniff.WEBM),
    "mkv": (b"\x1a\x45\xdf\xa3\x01\x00\x00\x00\x00\x00\x00\x1fB\x82\x88matroska", sniff.MATROSKA),
    "avi": (b"RIFF\x00\x10\x00\x00AVI LIST", sniff.AVI),
    "wav": (b"RIFF\x00\x10\x00\x00WAVEfmt ", sniff.WAV),
    "mpegts": (_ts(), sniff.MPEG_TS),
    "mpegps": (b"\x00\x00\x01\xba\x44\x00\x04\x00", sniff.MPEG_PS),
    "ogg": (b"OggS\x00\x02\x00\x00", sniff.OGG),
    "flv": (b"FLV\x01\x05\x00\x00\x00\x09", sniff.FLV),
    "asf": (bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c") + bytes(8), sniff.ASF),
    "mp3-id3": (b"ID3\x04\x00\x00\x00\x00\x00\x00", sniff.MP3),
    "mp3-frame": (b"\xff\xfb\x90\x64\x00\x00", sniff.MP3),
    "flac": (b"fLaC\x00\x00\x00\x22", sniff.FLAC),
    "aac-adts": (b"\xff\xf1\x50\x80\x02\x1f\xfc", sniff.AAC),
}


@pytest.mark.parametrize(("head", "expected"), CASES.values(), ids=CASES.keys())
def test_containers_are_recognised(head: bytes, expected: sniff.Container) -> None:
    assert sniff.sniff(head + bytes(64)) == expected


@pytest.mark.parametrize(
    "head",
    [
        b"just some text, honestly\n" * 10,
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n" + bytes(64),
        b"\x89PNG\r\n\x1a\n" + bytes(64),
        b"PK\x03\x04" + bytes(64),  # zip
        b"RIFF\x00\x00\x00\x00WEBPVP8 " + bytes(64),  # a RIFF that is an image
        b"\x47" + bytes(300),  # a lone 0x47 is not a transport stream
        b"\xff\xff\xff\xff" + bytes(64),  # sync bits with reserved values
        b"ID",  # too short to say
        b"",
    ],
)
def test_non_media_is_refused(head: bytes) -> None:
    assert sniff.sniff(head) is None


def test_every_shared_sample_is_accepted_including_the_corrupt_mkv() -> None:
    found = {}
    for path in sorted(MEDIA.iterdir()):
        if path.name == "MANIFEST.tsv":
            continue
        with path.open("rb") as handle:
            found[path.name] = sniff.sniff(handle.read(sniff.SNIFF_BYTES))
    assert len(found) == 7
    assert all(found.values()), found
    assert found["file-type__fixture-corrupt.mkv"] == sniff.MATROSKA
    assert found["moviepy__big_buck_bunny_432_433.webm"] == sniff.WEBM
    assert found["mp4-rust__audio_aac.m4a"] == sniff.M4A
