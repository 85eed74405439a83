"""Open an upload with PyAV and turn its audio track into 16-bit PCM, bounded.

Only the audio stream is demuxed and decoded: every other stream is set to
AVDISCARD_ALL, so demuxers that can skip (mov/mp4 does) skip over video samples
instead of handing them up. Reads go through :class:`CountingReader`, which
bounds the total bytes a malformed file can make the demuxer read (a demuxer
seeking in circles ends as CORRUPT_MEDIA rather than a hang).

PyAV errors are translated into :class:`ConversionError` here and only here;
anything else (an OSError from the storage behind ``src``, say) propagates as is.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import av
import av.error
from av.audio.format import AudioFormat
from av.audio.frame import AudioFrame
from av.audio.resampler import AudioResampler
from av.audio.stream import AudioStream
from av.container import InputContainer
from av.stream import Disposition

from converter_svc.errors import (
    CORRUPT_MEDIA,
    NO_AUDIO,
    TOO_LONG,
    UNSUPPORTED_MEDIA,
    ConversionError,
)
from converter_svc.io_types import SeekableSource

log = logging.getLogger(__name__)

#: AVIO buffer: PyAV's default. Larger buffers read more of the skipped video.
IO_BUFFER_SIZE = 64 * 1024
#: Resampler output frame size: fewer, larger frames cut per-frame Python overhead.
PCM_FRAME_SAMPLES = 4608
#: Decoded length may differ from the declared one by this much and still be
#: forced to the declared length (codec end padding, container rounding).
LENGTH_TOLERANCE_S = 0.2
#: A demuxer that reads more than this many times the file's size is looping.
MAX_READ_FACTOR = 4
_MAX_READ_SLACK = 16 * 1024 * 1024
#: Decoding more than twice the declared length plus this much means a looping demuxer.
RUNAWAY_SLACK_S = 60
#: Packets in a row that yield no audio before the input counts as garbage.
MAX_EMPTY_PACKETS = 20_000

_MPEG1_RATES = (32000, 44100, 48000)
_44K_FAMILY = (11025, 22050, 88200, 176400)


class CountingReader:
    """A read-only, seekable view of ``src`` that counts and bounds what is read."""

    def __init__(self, src: SeekableSource, size: int) -> None:
        self._src = src
        self.size = size
        self.bytes_read = 0
        self.reads = 0
        self._limit = MAX_READ_FACTOR * size + _MAX_READ_SLACK

    def read(self, n: int = -1) -> bytes:
        data = self._src.read(n)
        self.bytes_read += len(data)
        self.reads += 1
        if self.bytes_read > self._limit:
            raise ConversionError(
                CORRUPT_MEDIA, "The file is malformed: reading it never reaches an end."
            )
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._src.seek(offset, whence)

    def tell(self) -> int:
        return self._src.tell()

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True


def source_size(src: SeekableSource) -> int:
    """Size of ``src`` in bytes (it is seekable by contract); position left at 0."""
    size = src.seek(0, 2)
    src.seek(0)
    return size


def check_declared_size(src: SeekableSource, size: int) -> None:
    """Fail fast on Matroska/WebM and RIFF (AVI/WAV) files shorter than they declare.

    Their demuxers stop quietly at a truncated end, and Matroska rarely states a
    per-stream duration to compare against, so a cut-off upload would otherwise
    convert into a shorter MP3. MP4 needs no such check: cut before its ``moov``
    it does not open, cut after it its audio track's duration gives it away.
    """
    head = src.read(256)
    src.seek(0)
    declared: int | None = None
    if head[:4] == b"RIFF" and len(head) >= 8:
        riff_size = int.from_bytes(head[4:8], "little")
        if 0 < riff_size < 0xFFFFFFF0:  # 0 and ~0 are streaming writers' "unknown"
            declared = 8 + riff_size
    elif head[:4] == b"\x1a\x45\xdf\xa3":
        declared = _matroska_segment_end(head)
    if declared is not None and declared > size:
        raise ConversionError(
            CORRUPT_MEDIA,
            f"The file is truncated: it declares {declared} bytes but has {size}.",
        )


def _vint(data: bytes, pos: int, *, keep_marker: bool) -> tuple[int, int] | None:
    """Read an EBML variable-length integer at ``pos``: (value, next position)."""
    if pos >= len(data) or data[pos] == 0:
        return None
    length = 8 - data[pos].bit_length() + 1
    if pos + length > len(data):
        return None
    value = int.from_bytes(data[pos : pos + length], "big")
    if not keep_marker:
        value &= (1 << (7 * length)) - 1
        if value == (1 << (7 * length)) - 1:
            return -1, pos + length  # "unknown size"
    return value, pos + length


def _matroska_segment_end(head: bytes) -> int | None:
    header_id = _vint(head, 0, keep_marker=True)
    if header_id is None:
        return None
    header_size = _vint(head, header_id[1], keep_marker=False)
    if header_size is None or header_size[0] < 0:
        return None
    pos = header_size[1] + header_size[0]
    segment_id = _vint(head, pos, keep_marker=True)
    if segment_id is None or segment_id[0] != 0x18538067:
        return None
    segment_size = _vint(head, segment_id[1], keep_marker=False)
    if segment_size is None or segment_size[0] < 0:
        return None
    return segment_size[1] + segment_size[0]


def open_container(reader: CountingReader) -> InputContainer:
    """Open the input; an unreadable container is CORRUPT_MEDIA."""
    try:
        return av.open(reader, mode="r", buffer_size=IO_BUFFER_SIZE)
    except av.error.FFmpegError as exc:
        raise ConversionError(
            CORRUPT_MEDIA, f"The file is not a readable media container ({exc.strerror})."
        ) from exc


def pick_audio_stream(container: InputContainer) -> AudioStream:
    """The default-disposition audio stream, else the first; discard all others."""
    audio = list(container.streams.audio)
    if not audio:
        raise ConversionError(NO_AUDIO, "The video has no audio track.")
    chosen = next((s for s in audio if s.disposition & Disposition.default), audio[0])
    for stream in container.streams:
        if stream.index != chosen.index:
            stream.discard = av.stream.Discard.all
    if chosen.codec_context is None:
        raise ConversionError(UNSUPPORTED_MEDIA, "The audio track's codec cannot be decoded.")
    return chosen


@dataclass(frozen=True)
class DeclaredLength:
    """How long the container says the audio is."""

    seconds: float | None
    #: True when it comes from the audio stream itself (MP4: exact to the sample);
    #: False when only the container's overall duration is known (Matroska, AVI).
    exact: bool


def declared_length(container: InputContainer, stream: AudioStream) -> DeclaredLength:
    """The audio's declared duration.

    A stream whose first timestamp is above zero (an MP4 edit list that starts
    into the media) counts from there: its duration is measured from media start.
    """
    if stream.duration is not None and stream.time_base is not None and stream.duration > 0:
        start = stream.start_time if stream.start_time and stream.start_time > 0 else 0
        seconds = float((stream.duration - start) * stream.time_base)
        if seconds > 0:
            return DeclaredLength(seconds, exact=True)
    if container.duration is not None and container.duration > 0:
        return DeclaredLength(container.duration / av.time_base, exact=False)
    return DeclaredLength(None, exact=False)


def output_rate(rate: int) -> int:
    """MPEG-1 rates are kept; others go to 44.1 kHz (their family) or 48 kHz.

    MPEG-2/2.5 rates (8-24 kHz) are valid MP3 but cap the bitrate at 160 kb/s,
    below the 192 kb/s default, so they are resampled to an MPEG-1 rate instead.
    """
    if rate in _MPEG1_RATES:
        return rate
    return 44100 if rate in _44K_FAMILY else 48000


def output_channels(channels: int) -> int:
    """Mono stays mono; stereo and anything wider becomes stereo."""
    return 1 if channels == 1 else 2


@dataclass(frozen=True)
class PcmBlock:
    """Samples in the encoder's format: one bytes object per plane."""

    planes: tuple[bytes, ...]
    samples: int


def plane_layout(sample_format: str, channels: int) -> tuple[int, int]:
    """(planes per block, bytes per sample in each plane) for a PyAV sample format."""
    width = AudioFormat(sample_format).bytes
    if sample_format.endswith("p"):
        return channels, width
    return 1, width * channels


class PcmDecoder:
    """Decodes the chosen stream into PcmBlocks of the requested format.

    ``target_samples`` (when the length is declared) is the exact number of samples
    the blocks add up to: the end is padded with silence or trimmed within
    LENGTH_TOLERANCE_S, which is what lets the MP3's tag, written first, be exact.
    """

    def __init__(
        self,
        container: InputContainer,
        stream: AudioStream,
        *,
        sample_format: str,
        rate: int,
        channels: int,
        target_samples: int | None,
        exact_length: bool,
        max_samples: int | None,
    ) -> None:
        self._container = container
        self._stream = stream
        self._format = sample_format
        self._rate = rate
        self._channels = channels
        self._layout = "mono" if channels == 1 else "stereo"
        self._target = target_samples
        self._exact = exact_length
        self._max = max_samples
        self._planar = sample_format.endswith("p")
        width = AudioFormat(sample_format).bytes
        self._bytes_per_sample = width if self._planar else width * channels
        self.decoded_samples = 0

    def _resampler(self) -> AudioResampler:
        return AudioResampler(
            format=self._format, layout=self._layout, rate=self._rate, frame_size=PCM_FRAME_SAMPLES
        )

    def _frames(self) -> Iterator[AudioFrame]:
        """Decoded frames of the stream, with PyAV's errors translated."""
        codec = self._stream.codec_context
        empty_run = 0
        try:
            for packet in self._container.demux(self._stream):
                frames = codec.decode(packet if packet.size else None)
                if frames:
                    empty_run = 0
                else:
                    empty_run += 1
                    if empty_run > MAX_EMPTY_PACKETS:
                        raise ConversionError(
                            CORRUPT_MEDIA, "The audio track holds no decodable audio."
                        )
                yield from frames
        except av.error.InvalidDataError as exc:
            raise ConversionError(
                CORRUPT_MEDIA, f"The audio track is corrupt ({exc.strerror})."
            ) from exc
        except (av.error.DecoderNotFoundError, av.error.PatchWelcomeError) as exc:
            raise ConversionError(
                UNSUPPORTED_MEDIA, f"The audio codec is not supported ({exc.strerror})."
            ) from exc
        except av.error.FFmpegError as exc:
            raise ConversionError(
                CORRUPT_MEDIA, f"The file could not be read ({exc.strerror})."
            ) from exc

    def _converted(self) -> Iterator[AudioFrame]:
        """Frames in the encoder's format, rate and layout."""
        resampler = self._resampler()
        template: tuple[str, str, int] | None = None
        for frame in self._frames():
            shape = (frame.format.name, frame.layout.name, frame.sample_rate)
            if template is not None and shape != template:
                # Parameters changed mid-stream (e.g. ADTS): drain, start afresh.
                yield from resampler.resample(None)
                resampler = self._resampler()
            template = shape
            try:
                yield from resampler.resample(frame)
            except (ValueError, av.error.FFmpegError) as exc:
                raise ConversionError(
                    UNSUPPORTED_MEDIA, f"The audio's sample layout is not supported ({exc})."
                ) from exc
        yield from resampler.resample(None)

    def _block(self, frame: AudioFrame, start: int, count: int) -> PcmBlock:
        width = self._bytes_per_sample
        lo, hi = start * width, (start + count) * width
        if self._planar:
            planes = tuple(bytes(memoryview(p)[lo:hi]) for p in frame.planes[: self._channels])
        else:
            planes = (bytes(memoryview(frame.planes[0])[lo:hi]),)
        return PcmBlock(planes, count)

    def silence(self, count: int) -> PcmBlock:
        width = self._bytes_per_sample
        zero = bytes(count * width)
        return PcmBlock(tuple(zero for _ in range(self._channels if self._planar else 1)), count)

    def blocks(self) -> Iterator[PcmBlock]:
        """The whole audio as PcmBlocks, exactly ``target_samples`` long if declared."""
        target = self._target
        tolerance = int(LENGTH_TOLERANCE_S * self._rate)
        runaway = 2 * (target or 0) + RUNAWAY_SLACK_S * self._rate
        emitted = 0
        held: list[tuple[AudioFrame, int]] = []  # beyond target, until EOF decides
        held_samples = 0
        for frame in self._converted():
            n = frame.samples
            self.decoded_samples += n
            if self._max is not None and self.decoded_samples > self._max:
                raise ConversionError(
                    TOO_LONG,
                    f"The audio is longer than the {self._max / self._rate:.0f} s allowed.",
                )
            if self._target is not None and self.decoded_samples > runaway:
                raise ConversionError(
                    CORRUPT_MEDIA, "The file decodes to far more audio than it declares."
                )
            if target is None or emitted + n <= target:
                yield self._block(frame, 0, n)
                emitted += n
                continue
            keep = max(0, target - emitted)
            if keep:
                yield self._block(frame, 0, keep)
                emitted += keep
            held.append((frame, keep))
            held_samples += n - keep
            if held_samples > tolerance:
                # The container understated the length: keep all the audio.
                log.warning("audio runs past its declared length; keeping all of it")
                for extra, offset in held:
                    yield self._block(extra, offset, extra.samples - offset)
                emitted += held_samples
                held, held_samples, target = [], 0, None
        if self.decoded_samples == 0:
            raise ConversionError(CORRUPT_MEDIA, "The audio track holds no decodable audio.")
        if target is None:
            return
        missing = target - emitted
        if missing > tolerance and self._exact:
            raise ConversionError(
                CORRUPT_MEDIA,
                f"The file is truncated: its audio ends at {emitted / self._rate:.2f} s "
                f"of the {target / self._rate:.2f} s it declares.",
            )
        while missing > 0:
            chunk = min(missing, PCM_FRAME_SAMPLES)
            yield self.silence(chunk)
            missing -= chunk
