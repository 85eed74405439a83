"""The ID3v2 title tag and the Xing/LAME "Info" frame, both written before any audio.

Why up front: the sink is a non-seekable upload stream, so the usual way (LAME
leaves a blank tag frame and the writer seeks back at the end) is not available.
The Info frame is built from the sample count the container declares, and the
transcoder makes the encoded stream exactly that long (see transcode.py).

Why the frame count is chosen with care: ffmpeg/ffprobe (5.1 at least) report an
MP3's duration as ``frames * 1152 / rate`` from this tag, without subtracting the
encoder delay and padding also recorded in it, so an honest count overstates the
duration by the 576-sample delay plus up to a frame of padding (up to 54 ms at
32 kHz). ``info_frame_counts`` picks the count that keeps that figure within
40 ms while gapless players (which trim by delay/padding) still get every sample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from converter_svc.mp3_frames import MPEG1_BITRATES, MPEG2_BITRATES, build_header

_XING_FRAMES, _XING_BYTES, _XING_TOC, _XING_QUALITY = 1, 2, 4, 8
DECODER_DELAY = 529  # samples an MPEG audio synthesis filterbank lags (LAME's convention)
_MAX_REPORTED_EXCESS_S = 0.040
_MAX_TITLE_CHARS = 512


def _crc16(data: bytes | bytearray) -> int:
    """CRC-16/ARC (poly 0x8005 reflected), as LAME and ffmpeg use for the LAME tag."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


@dataclass(frozen=True)
class InfoCounts:
    """What the Info frame says about the stream that follows it."""

    frames: int  # frame count written into the tag
    end_padding: int  # LAME tag end padding, samples
    expected_frames: int  # frames a LAME encode of that many samples actually yields


def info_frame_counts(samples: int, *, sample_rate: int, encoder_delay: int) -> InfoCounts:
    """Frame count and padding for ``samples`` of output encoded by LAME.

    LAME 3.100 emits ``ceil(samples / 1152) + 1`` frames (measured for every residue
    mod 1152; the last holds the 576-sample delay's tail). The tag's own count
    is ``ceil((samples + delay) / 1152)`` (what a gapless decoder needs, with the
    rest as end padding) unless that makes ffprobe's figure more than 40 ms longer
    than the audio (only possible at 32 kHz); then one frame fewer and no padding,
    which a gapless player trims at most ~14 ms early while ffmpeg plays it all.
    """
    spf = 1152
    expected = math.ceil(samples / spf) + 1
    frames = max(1, math.ceil((samples + encoder_delay) / spf))
    padding = frames * spf - samples - encoder_delay
    if (frames * spf - samples) / sample_rate > _MAX_REPORTED_EXCESS_S and frames > 1:
        frames -= 1
        padding = 0
    return InfoCounts(frames=frames, end_padding=padding, expected_frames=expected)


def lame_info_frame(
    *,
    sample_rate: int,
    mono: bool,
    bitrate_kbps: int,
    samples: int,
    encoder_delay: int,
    encoder_version: str = "LAME3.100",
) -> bytes:
    """A LAME-style "Info" (CBR) tag frame for a stream of ``samples`` samples."""
    counts = info_frame_counts(samples, sample_rate=sample_rate, encoder_delay=encoder_delay)
    header = build_header(sample_rate=sample_rate, bitrate_kbps=bitrate_kbps, mono=mono)
    size = 144 * bitrate_kbps * 1000 // sample_rate
    frame_bytes = 144 * bitrate_kbps * 1000 / sample_rate
    stream_bytes = size + round(counts.expected_frames * frame_bytes)
    side = 17 if mono else 32
    body = bytearray(header) + bytes(side)
    body += b"Info" + (_XING_FRAMES | _XING_BYTES | _XING_TOC | _XING_QUALITY).to_bytes(4, "big")
    body += counts.frames.to_bytes(4, "big") + stream_bytes.to_bytes(4, "big")
    body += bytes(i * 256 // 100 for i in range(100))  # linear TOC: CBR
    body += (0).to_bytes(4, "big")  # quality indicator
    body += encoder_version.encode("ascii")[:9].ljust(9, b" ")
    body += bytes([0x01])  # tag revision 0, method 1 = CBR
    body += bytes([0])  # lowpass / 100 Hz: not recorded
    body += bytes(4 + 2 + 2)  # peak amplitude, radio and audiophile replay gain: none
    body += bytes([0])  # encoding flags, ATH type
    body += bytes([min(bitrate_kbps, 255)])
    delay = min(encoder_delay, 4095)
    body += (delay << 12 | min(counts.end_padding, 4095)).to_bytes(3, "big")
    body += bytes([0, 0]) + (0).to_bytes(2, "big")  # misc, MP3 gain, preset/surround
    body += stream_bytes.to_bytes(4, "big")
    body += (0).to_bytes(2, "big")  # music CRC: unknown until the end, left 0
    body += _crc16(body).to_bytes(2, "big")
    if len(body) > size:
        raise ValueError(f"{bitrate_kbps} kb/s frames are too small for the Info tag")
    return bytes(body.ljust(size, b"\0"))


def xing_frame_for_copy(
    *, sample_rate: int, mono: bool, mpeg1: bool, bitrate_kbps: int, frames: int
) -> bytes:
    """A "Xing" frame (frame count only) for a stream copied from the source.

    Used when MP3 audio is copied: the copied stream may be VBR and its encoder
    delay is unknown, so only the frame count is stated, which is what ffprobe and
    players need for the duration.
    """
    side = (17 if mono else 32) if mpeg1 else (9 if mono else 17)
    body_len = 4 + side + 12
    coefficient = 144 if mpeg1 else 72
    candidates = MPEG1_BITRATES if mpeg1 else MPEG2_BITRATES
    preferred = [bitrate_kbps] if bitrate_kbps in candidates else []
    for rate in [*preferred, *candidates]:
        size = coefficient * rate * 1000 // sample_rate
        if size >= body_len:
            break
    header = build_header(sample_rate=sample_rate, bitrate_kbps=rate, mono=mono, mpeg1=mpeg1)
    body = bytearray(header) + bytes(side) + b"Xing" + _XING_FRAMES.to_bytes(4, "big")
    body += frames.to_bytes(4, "big")
    return bytes(body.ljust(size, b"\0"))


def _synchsafe(n: int) -> bytes:
    return bytes([(n >> 21) & 0x7F, (n >> 14) & 0x7F, (n >> 7) & 0x7F, n & 0x7F])


def _text_frame(frame_id: str, text: str) -> bytes:
    try:
        payload = b"\x00" + text.encode("latin-1")
    except UnicodeEncodeError:
        payload = b"\x01" + text.encode("utf-16")  # with BOM, as ID3v2.3 requires
    return frame_id.encode("ascii") + len(payload).to_bytes(4, "big") + b"\0\0" + payload


def clean_title(title: str) -> str:
    """Printable, single-line, bounded: a title comes from a user's file name."""
    text = "".join(ch if ch.isprintable() else " " for ch in title)
    return " ".join(text.split())[:_MAX_TITLE_CHARS]


def id3v2_tag(*, title: str | None, encoder: str | None = None) -> bytes:
    """An ID3v2.3 tag (the most widely read version) with TIT2 and TSSE frames."""
    frames = b""
    if title is not None and clean_title(title):
        frames += _text_frame("TIT2", clean_title(title))
    if encoder:
        frames += _text_frame("TSSE", encoder)
    if not frames:
        return b""
    return b"ID3\x03\x00\x00" + _synchsafe(len(frames)) + frames
