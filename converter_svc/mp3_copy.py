"""Copying MP3 audio as it is: no re-encode, so no generation loss and no CPU.

Each demuxed packet is one MPEG audio frame (the mp4 demuxer stores them so, the
mp3 demuxer's parser splits them so). Frames are checked before they are written:
a Xing/Info/VBRI frame from the source is dropped (the copy gets its own, stating
the frame count), and a packet that is not a whole Layer III frame is skipped
(a few are tolerated, as players do; many mean the track is corrupt).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import av.error
from av.audio.stream import AudioStream
from av.container import InputContainer

from converter_svc.audio_source import DeclaredLength
from converter_svc.encoding import SinkWriter
from converter_svc.errors import CORRUPT_MEDIA, TOO_LONG, ConversionError
from converter_svc.lame import LAME_ENCODER_DELAY
from converter_svc.mp3_frames import FrameHeader, parse_header
from converter_svc.mp3_tags import id3v2_tag, xing_frame_for_copy

MP3_DECODERS = frozenset({"mp3", "mp3float"})
MAX_BAD_PACKETS = 16


def is_mp3(stream: AudioStream) -> bool:
    """Whether the stream is MPEG-1/2 Layer III audio (not mp3adu/mp3on4 variants)."""
    return stream.codec_context.name in MP3_DECODERS


@dataclass(frozen=True)
class CopyResult:
    duration_s: float
    bitrate_kbps: int
    sample_rate: int
    channels: int


def _is_tag_frame(frame: bytes, header: FrameHeader) -> bool:
    at = 4 + header.side_info_size
    return frame[at : at + 4] in (b"Xing", b"Info") or frame[36:40] == b"VBRI"


def _tag_frames(frames: int | None, length: DeclaredLength, header: FrameHeader) -> int:
    """Frame count for the copy's Xing frame.

    The frame count is what ffprobe turns into the duration. Copied streams made by
    LAME carry 576 samples of encoder delay and up to two frames of padding that a
    container's edit list hides; when the container states the audio's length, the
    count is trimmed to cover that length plus LAME's delay, never past the frames
    actually present, so the reported duration stays close to the container's.
    """
    spf = header.samples_per_frame
    if length.seconds is None:
        return frames or 0
    samples = round(length.seconds * header.sample_rate)
    covering = math.ceil((samples + LAME_ENCODER_DELAY) / spf)
    return covering if frames is None else min(frames, covering)


def copy_mp3_stream(
    container: InputContainer,
    stream: AudioStream,
    out: SinkWriter,
    *,
    title: str | None,
    length: DeclaredLength,
    max_duration_s: float | None,
) -> CopyResult:
    """Write ID3v2 + Xing frame + the source's frames; return what was copied."""
    first: FrameHeader | None = None
    frames = bad = samples = 0
    bitrate_sum = 0
    expected = stream.frames if stream.frames and stream.frames > 0 else None
    try:
        for packet in container.demux(stream):
            if not packet.size:
                continue
            data = bytes(packet)
            header = parse_header(data)
            if header is None or header.frame_size > len(data) or _is_tag_frame(data, header):
                bad += header is None or header.frame_size > len(data)
                if bad > MAX_BAD_PACKETS:
                    raise ConversionError(CORRUPT_MEDIA, "The MP3 audio track is corrupt.")
                continue
            if first is None:
                first = header
                expected = _tag_frames(expected, length, header)
                out.write(id3v2_tag(title=title, encoder=None))
                out.write(
                    xing_frame_for_copy(
                        sample_rate=header.sample_rate,
                        mono=header.mono,
                        mpeg1=header.mpeg1,
                        bitrate_kbps=header.bitrate_kbps,
                        frames=expected or 0,
                    )
                )
            out.write(data[: header.frame_size])
            frames += 1
            samples += header.samples_per_frame
            bitrate_sum += header.bitrate_kbps
            if max_duration_s is not None and samples > max_duration_s * first.sample_rate:
                raise ConversionError(
                    TOO_LONG, f"The audio is longer than the {max_duration_s:.0f} s allowed."
                )
    except av.error.FFmpegError as exc:
        raise ConversionError(
            CORRUPT_MEDIA, f"The MP3 audio track could not be read ({exc.strerror})."
        ) from exc
    if first is None:
        raise ConversionError(CORRUPT_MEDIA, "The MP3 audio track holds no audio frames.")
    return CopyResult(
        duration_s=samples / first.sample_rate,
        bitrate_kbps=round(bitrate_sum / frames),
        sample_rate=first.sample_rate,
        channels=1 if first.mono else 2,
    )
