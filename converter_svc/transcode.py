"""Streaming conversion of an upload's audio track into an MP3: the converter's core.

``transcode_to_mp3`` reads ``src`` (seekable; in production a GridFS reader that
fetches chunk ranges on demand) only as far as the audio needs, and writes the MP3
into ``sink`` (write-only, not seekable) as it is produced. Memory stays bounded
whatever the input's length.

How, and why (numbers in docs/benchmarks.md):

* Demux and decode with PyAV, audio stream only (other streams discarded).
* Resample with libswresample to 16-bit PCM at an MPEG-1 rate, mono or stereo.
* Encode with LAME from Debian's libmp3lame via ctypes (``lame.py``; the
  ``lameenc`` wheel when that library is absent), CBR at the requested bitrate
  and LAME's default quality, like ``ffmpeg -c:a libmp3lame -b:a N``. LAME is
  ~95% of the work, so inputs long enough are cut into segments encoded on
  parallel threads and joined without gap or drift (``segments.py``).
* Before any audio: an ID3v2 tag with the title and a LAME "Info" frame stating
  the exact length, so that ffprobe and players report the source's duration.
  The sink cannot seek, so the length comes from the container, and the decoded
  audio is padded or trimmed to it (within 0.2 s; a larger shortfall against an
  exact MP4 track length means a truncated file).
* MP3 audio is copied frame by frame instead, behind an ID3v2 tag and a Xing
  frame with its frame count.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass

from av.audio.stream import AudioStream
from av.container import InputContainer

from converter_svc.audio_source import (
    CountingReader,
    DeclaredLength,
    PcmDecoder,
    check_declared_size,
    declared_length,
    open_container,
    output_channels,
    output_rate,
    pick_audio_stream,
    plane_layout,
    source_size,
)
from converter_svc.encoding import SinkWriter, encode_segmented, encode_sequential
from converter_svc.errors import CORRUPT_MEDIA, INTERNAL, TOO_LONG, ConversionError
from converter_svc.io_types import ByteSink, SeekableSource
from converter_svc.lame import EncoderError, encoder_factory, lame_version
from converter_svc.mp3_copy import copy_mp3_stream, is_mp3
from converter_svc.mp3_tags import id3v2_tag, lame_info_frame
from converter_svc.segments import FRAME_SAMPLES, SpliceError

__all__ = ["ConversionError", "TranscodeResult", "transcode_to_mp3"]

log = logging.getLogger(__name__)

MIN_BITRATE_KBPS, MAX_BITRATE_KBPS = 96, 320
#: Segment length bounds, in MP3 frames (1152 samples: 24 ms at 48 kHz).
MIN_SEGMENT_FRAMES, MAX_SEGMENT_FRAMES = 512, 1024
MAX_THREADS = 4


@dataclass(frozen=True)
class TranscodeResult:
    """What was written: the MP3's audio parameters and size."""

    duration_s: float
    bitrate_kbps: int
    sample_rate: int
    channels: int
    bytes_written: int
    copied: bool  # True when MP3 source audio was copied, not re-encoded


def default_threads() -> int:
    """Encoder threads per conversion: every core, up to MAX_THREADS."""
    return max(1, min(MAX_THREADS, os.cpu_count() or 1))


def transcode_to_mp3(
    src: SeekableSource,
    sink: ByteSink,
    *,
    bitrate_kbps: int = 192,
    title: str | None = None,
    max_duration_s: float | None = None,
    threads: int | None = None,
) -> TranscodeResult:
    """Convert the audio of ``src`` into an MP3 written to ``sink``.

    Raises ConversionError (with ``.reason``) when the media cannot be converted;
    the sink then holds a partial MP3 that the caller must discard. Errors raised
    by ``src`` or ``sink`` themselves (storage faults) propagate unchanged.
    ``threads`` caps the LAME threads (default: the cores, at most 4).
    """
    if not MIN_BITRATE_KBPS <= bitrate_kbps <= MAX_BITRATE_KBPS:
        raise ValueError(f"bitrate_kbps must be {MIN_BITRATE_KBPS}-{MAX_BITRATE_KBPS}")
    size = source_size(src)
    if size == 0:
        raise ConversionError(CORRUPT_MEDIA, "The file is empty.")
    check_declared_size(src, size)
    reader = CountingReader(src, size)
    container = open_container(reader)
    try:
        stream = pick_audio_stream(container)
        length = declared_length(container, stream)
        too_long = max_duration_s is not None and (length.seconds or 0) > max_duration_s
        if too_long:
            raise ConversionError(
                TOO_LONG,
                f"The audio lasts {length.seconds or 0:.0f} s; at most {max_duration_s or 0:.0f} s "
                "are allowed.",
            )
        out = SinkWriter(sink)
        if is_mp3(stream):
            copied = copy_mp3_stream(
                container, stream, out, title=title, length=length, max_duration_s=max_duration_s
            )
            out.flush()
            return TranscodeResult(
                duration_s=copied.duration_s,
                bitrate_kbps=copied.bitrate_kbps,
                sample_rate=copied.sample_rate,
                channels=copied.channels,
                bytes_written=out.bytes_written,
                copied=True,
            )
        return _encode(
            container,
            stream,
            out,
            bitrate_kbps=bitrate_kbps,
            title=title,
            length=length,
            max_duration_s=max_duration_s,
            threads=default_threads() if threads is None else max(1, threads),
        )
    except (EncoderError, SpliceError) as exc:
        raise ConversionError(INTERNAL, f"The MP3 encoder failed ({exc}).") from exc
    finally:
        container.close()


def _segment_frames(target: int | None, workers: int, bitrate_kbps: int) -> int | None:
    """Segment length for a parallel encode, or None to encode in one piece."""
    if workers < 2 or bitrate_kbps >= MAX_BITRATE_KBPS:
        return None
    if target is None:
        return MAX_SEGMENT_FRAMES
    frames = math.ceil(target / FRAME_SAMPLES)
    if frames < 2 * MIN_SEGMENT_FRAMES:
        return None
    return max(MIN_SEGMENT_FRAMES, min(MAX_SEGMENT_FRAMES, math.ceil(frames / workers)))


def _encode(
    container: InputContainer,
    stream: AudioStream,
    out: SinkWriter,
    *,
    bitrate_kbps: int,
    title: str | None,
    length: DeclaredLength,
    max_duration_s: float | None,
    threads: int,
) -> TranscodeResult:
    in_rate, in_channels = stream.codec_context.sample_rate, stream.codec_context.channels
    if in_rate <= 0 or in_channels <= 0:
        raise ConversionError(CORRUPT_MEDIA, "The audio track does not say how it is sampled.")
    rate, channels = output_rate(in_rate), output_channels(in_channels)
    make_encoder = encoder_factory(sample_rate=rate, channels=channels, bitrate_kbps=bitrate_kbps)
    probe = make_encoder()
    sample_format, delay = probe.sample_format, probe.encoder_delay
    probe.close()

    target = None if length.seconds is None else max(1, round(length.seconds * rate))
    out.write(id3v2_tag(title=title, encoder=f"LAME {lame_version()}"))
    if target is not None:
        out.write(
            lame_info_frame(
                sample_rate=rate,
                mono=channels == 1,
                bitrate_kbps=bitrate_kbps,
                samples=target,
                encoder_delay=delay,
                encoder_version=f"LAME{lame_version()}",
            )
        )
    decoder = PcmDecoder(
        container,
        stream,
        sample_format=sample_format,
        rate=rate,
        channels=channels,
        target_samples=target,
        exact_length=length.exact,
        max_samples=None if max_duration_s is None else int(max_duration_s * rate),
    )
    planes, bytes_per_sample = plane_layout(sample_format, channels)
    segment_frames = _segment_frames(target, threads, bitrate_kbps)
    if segment_frames is None:
        total = encode_sequential(decoder.blocks(), make_encoder, out)
    else:
        total = encode_segmented(
            decoder.blocks(),
            make_encoder,
            out,
            workers=threads,
            segment_frames=segment_frames,
            bytes_per_sample=bytes_per_sample,
            channels_in_planes=planes,
        )
    out.flush()
    log.debug(
        "encoded %d samples (%d decoded, %d declared) at %d Hz, %d ch",
        total,
        decoder.decoded_samples,
        target or 0,
        rate,
        channels,
    )
    return TranscodeResult(
        duration_s=total / rate,
        bitrate_kbps=bitrate_kbps,
        sample_rate=rate,
        channels=channels,
        bytes_written=out.bytes_written,
        copied=False,
    )
