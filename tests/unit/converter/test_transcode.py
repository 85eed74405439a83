"""transcode_to_mp3 on real files: every shared sample, generated inputs, failure reasons.

Each MP3 is checked with ffprobe/ffmpeg (Debian's; `make test` installs them, and a
missing one fails the test loudly): it decodes without errors, has the expected
channels and title, and its duration (as ffprobe reports it) is within 50 ms of the
source audio's.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from converter_svc import lame, segments
from converter_svc.errors import ConversionError
from converter_svc.mp3_frames import FrameSplitter, parse_header, parse_side_info
from converter_svc.mp3_tags import info_frame_counts
from converter_svc.transcode import TranscodeResult, transcode_to_mp3
from tests.fixtures.media import SHARED_MEDIA, tool

TOLERANCE_S = 0.050
Generate = Callable[[str, list[str]], Path]  # the conftest's make_media


class NonSeekableSink:
    """Write-only, like the GridFS upload stream: no seek, no tell, no read."""

    def __init__(self) -> None:
        self._buffer = io.BytesIO()
        self.writes = 0

    def write(self, data: bytes) -> int:
        self.writes += 1
        return self._buffer.write(data)

    @property
    def data(self) -> bytes:
        return self._buffer.getvalue()


class CountingSource:
    """A seekable file that records how much is read, and when."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("rb")
        self.bytes_read = 0
        self.largest_read = 0

    def read(self, size: int = -1) -> bytes:
        data = self._file.read(size)
        self.bytes_read += len(data)
        self.largest_read = max(self.largest_read, len(data))
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def close(self) -> None:
        self._file.close()


def convert(path: Path, tmp_path: Path, **options: object) -> tuple[TranscodeResult, Path]:
    sink = NonSeekableSink()
    with path.open("rb") as src:
        result = transcode_to_mp3(src, sink, **options)  # type: ignore[arg-type]
    out = tmp_path / f"{path.stem}.mp3"
    out.write_bytes(sink.data)
    assert result.bytes_written == len(sink.data)
    return result, out


def probe(path: Path) -> dict[str, object]:
    result = subprocess.run(
        [tool("ffprobe"), "-v", "error", "-show_format", "-show_streams",
         "-of", "json", str(path)],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return dict(json.loads(result.stdout))


def source_audio_s(path: Path) -> float:
    """The source's audio length per ffprobe.

    An MP4 track whose edit list starts into the media (start_time > 0) reports its
    duration from media start; the audio a player hears is duration - start_time
    (shared/media's audio_aac.m4a: 4.226 - 0.082 = 4.144 s, which is also what
    `ffmpeg -i` decodes). Matroska reports no per-stream duration: the file's counts.
    """
    info = probe(path)
    stream = next(s for s in info["streams"] if s["codec_type"] == "audio")  # type: ignore[attr-defined]
    if "duration" in stream:
        return float(stream["duration"]) - max(0.0, float(stream.get("start_time", 0)))
    return float(info["format"]["duration"])  # type: ignore[index]


def decoded_cleanly(path: Path) -> bool:
    result = subprocess.run(
        [tool("ffmpeg"), "-v", "error", "-i", str(path), "-f", "null", "-"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return result.returncode == 0 and not result.stderr.strip()


def check_mp3(
    out: Path, *, source: Path, channels: int, title: str | None, copied: bool = False
) -> dict[str, object]:
    info = probe(out)
    assert info["format"]["format_name"] == "mp3"  # type: ignore[index]
    stream = info["streams"][0]  # type: ignore[index]
    assert stream["codec_name"] == "mp3"
    assert stream["channels"] == channels
    duration = float(info["format"]["duration"])  # type: ignore[index]
    expected = source_audio_s(source)
    assert abs(duration - expected) <= TOLERANCE_S, (duration, expected)
    if title is not None:
        assert info["format"]["tags"]["title"] == title  # type: ignore[index]
    if not copied:  # ffprobe only reports the LAME tag's encoder when its CRC is right
        assert stream.get("tags", {}).get("encoder", "").startswith("LAME"), stream
    assert decoded_cleanly(out)
    return info


def manifest() -> list[dict[str, str]]:
    path = SHARED_MEDIA / "MANIFEST.tsv"
    if not path.exists():
        raise AssertionError(f"the shared media are missing: {path}")
    with path.open() as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def expected_failure(row: dict[str, str]) -> str | None:
    if row["container"] == "UNREADABLE":
        return "CORRUPT_MEDIA"
    if row["audio_codec"] in ("none", ""):
        return "NO_AUDIO"
    return None


@pytest.mark.parametrize("row", manifest(), ids=lambda row: row["file"])
def test_every_shared_sample_converts_or_fails_with_its_reason(
    row: dict[str, str], tmp_path: Path
) -> None:
    path = SHARED_MEDIA / row["file"]
    reason = expected_failure(row)
    if reason is not None:
        with pytest.raises(ConversionError) as caught:
            convert(path, tmp_path, title="x")
        assert caught.value.reason == reason
        assert str(caught.value)
        return
    result, out = convert(path, tmp_path, title=f"Sample {path.stem} 日本 ü")
    channels = int(row["channels"])
    check_mp3(out, source=path, channels=min(channels, 2), title=f"Sample {path.stem} 日本 ü")
    assert result.channels == min(channels, 2)
    assert result.sample_rate == int(row["audio_rate"])  # 44.1/48 kHz are kept
    assert not result.copied


def test_a_ten_minute_video_converts_within_50_ms(ten_minute_mp4: Path, tmp_path: Path) -> None:
    result, out = convert(ten_minute_mp4, tmp_path, title="ten minutes", threads=2)
    check_mp3(out, source=ten_minute_mp4, channels=2, title="ten minutes")
    assert result.duration_s == pytest.approx(600.0, abs=0.001)
    assert result.bitrate_kbps == 192 and result.sample_rate == 48000


def test_moov_at_the_end_through_a_non_seekable_sink(make_media: Generate, tmp_path: Path) -> None:
    path = make_media(
        "moov-at-end.mp4",
        ["-f", "lavfi", "-i", "testsrc2=size=64x48:rate=5:duration=6",
         "-f", "lavfi", "-i", "sine=frequency=330:sample_rate=44100:duration=6",
         "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"],
    )  # fmt: skip
    data = path.read_bytes()
    assert data.index(b"moov") > data.index(b"mdat")  # really at the end
    _, out = convert(path, tmp_path, title="moov")
    check_mp3(out, source=path, channels=1, title="moov")


def test_five_one_is_downmixed_to_stereo(make_media: Generate, tmp_path: Path) -> None:
    path = make_media(
        "surround.mp4",
        ["-f", "lavfi", "-i", "sine=frequency=500:sample_rate=48000:duration=3",
         "-af", "aformat=channel_layouts=5.1", "-c:a", "aac"],
    )  # fmt: skip
    result, out = convert(path, tmp_path)
    check_mp3(out, source=path, channels=2, title=None)
    assert result.channels == 2


def test_mp3_audio_is_copied_not_reencoded(make_media: Generate, tmp_path: Path) -> None:
    path = make_media(
        "mp3-audio.mp4",
        ["-f", "lavfi", "-i", "testsrc2=size=64x48:rate=5:duration=7.3",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=7.3",
         "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "libmp3lame", "-b:a", "128k"],
    )  # fmt: skip
    result, out = convert(path, tmp_path, title="copied", bitrate_kbps=256)
    assert result.copied
    assert result.bitrate_kbps == 128  # the source's frames, not a re-encode at 256
    check_mp3(out, source=path, channels=1, title="copied", copied=True)


@pytest.mark.parametrize(("rate", "expected"), [(22050, 44100), (32000, 32000), (96000, 48000)])
def test_sample_rates(rate: int, expected: int, make_media: Generate, tmp_path: Path) -> None:
    path = make_media(
        f"rate-{rate}.mka",
        ["-f", "lavfi", "-i", f"sine=frequency=300:sample_rate={rate}:duration=2.5",
         "-c:a", "flac"],
    )  # fmt: skip
    result, out = convert(path, tmp_path)
    info = check_mp3(out, source=path, channels=1, title=None)
    assert result.sample_rate == expected
    assert int(info["streams"][0]["sample_rate"]) == expected  # type: ignore[index]


def test_too_long_fails_fast_before_reading_the_audio(ten_minute_mp4: Path, tmp_path: Path) -> None:
    src = CountingSource(ten_minute_mp4)
    sink = NonSeekableSink()
    try:
        with pytest.raises(ConversionError) as caught:
            transcode_to_mp3(src, sink, max_duration_s=599)  # type: ignore[arg-type]
    finally:
        src.close()
    assert caught.value.reason == "TOO_LONG"
    assert sink.data == b""
    assert src.bytes_read < ten_minute_mp4.stat().st_size // 10


def test_too_long_is_also_caught_while_decoding(make_media: Generate, tmp_path: Path) -> None:
    # Matroska written to a pipe carries no duration: only decoding can tell.
    path = make_media(
        "no-duration.mkv",
        ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=8",
         "-c:a", "libvorbis", "-f", "matroska", "-live", "1"],
    )  # fmt: skip
    with pytest.raises(ConversionError) as caught:
        convert(path, tmp_path, max_duration_s=5)
    assert caught.value.reason == "TOO_LONG"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("faststart", [False, True], ids=["moov-at-end", "moov-first"])
def test_a_file_cut_in_half_is_corrupt_media(
    faststart: bool, make_media: Generate, tmp_path: Path
) -> None:
    args = ["-f", "lavfi", "-i", "testsrc2=size=64x48:rate=5:duration=10",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=10",
            "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"]  # fmt: skip
    if faststart:
        args += ["-movflags", "+faststart"]
    whole = make_media(f"whole-{faststart}.mp4", args)
    half = tmp_path / "half.mp4"
    half.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(ConversionError) as caught:
        convert(half, tmp_path)
    assert caught.value.reason == "CORRUPT_MEDIA"


@pytest.mark.timeout(60)
def test_a_truncated_webm_is_corrupt_media(make_media: Generate, tmp_path: Path) -> None:
    whole = make_media(
        "whole.webm",
        ["-f", "lavfi", "-i", "testsrc2=size=64x48:rate=5:duration=6",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=6",
         "-c:v", "libvpx", "-deadline", "realtime", "-c:a", "libopus"],
    )  # fmt: skip
    cut = tmp_path / "cut.webm"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 3])
    with pytest.raises(ConversionError) as caught:
        convert(cut, tmp_path)
    assert caught.value.reason == "CORRUPT_MEDIA"


def test_an_undecodable_codec_is_unsupported_media(tmp_path: Path) -> None:
    fmt = (0x1234).to_bytes(2, "little") + (1).to_bytes(2, "little")
    fmt += (8000).to_bytes(4, "little") + (16000).to_bytes(4, "little")
    fmt += (2).to_bytes(2, "little") + (16).to_bytes(2, "little")
    body = b"WAVE" + b"fmt " + len(fmt).to_bytes(4, "little") + fmt
    body += b"data" + (8000).to_bytes(4, "little") + bytes(8000)
    path = tmp_path / "unknown-codec.wav"
    path.write_bytes(b"RIFF" + len(body).to_bytes(4, "little") + body)
    with pytest.raises(ConversionError) as caught:
        convert(path, tmp_path)
    assert caught.value.reason == "UNSUPPORTED_MEDIA"


def test_garbage_is_corrupt_media(tmp_path: Path) -> None:
    path = tmp_path / "garbage.mp4"
    path.write_bytes(bytes(range(256)) * 400)
    with pytest.raises(ConversionError) as caught:
        convert(path, tmp_path)
    assert caught.value.reason == "CORRUPT_MEDIA"


def test_the_input_is_streamed_once_and_the_output_as_it_is_made(
    make_media: Generate, tmp_path: Path
) -> None:
    """Reads are small and cover the file about once; output starts long before EOF."""
    path = make_media(
        "streaming.mp4",
        ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=40",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=40",
         "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "2M", "-c:a", "aac"],
    )  # fmt: skip
    size = path.stat().st_size
    src = CountingSource(path)
    read_at_write: list[int] = []

    class WatchingSink(NonSeekableSink):
        def write(self, data: bytes) -> int:
            read_at_write.append(src.bytes_read)
            return super().write(data)

    sink = WatchingSink()
    try:
        transcode_to_mp3(src, sink, threads=1)  # type: ignore[arg-type]
    finally:
        src.close()
    assert src.bytes_read <= 1.1 * size + 256 * 1024, (src.bytes_read, size)
    assert src.largest_read <= 1024 * 1024
    assert len(read_at_write) > 10
    # More than the header went out while less than 60% of the input had been read.
    assert any(read < 0.6 * size for read in read_at_write[2:]), (read_at_write[:5], size)


def _decode_pcm(path: Path) -> np.ndarray:
    raw = subprocess.run(
        [tool("ffmpeg"), "-v", "error", "-i", str(path), "-f", "f32le", "-"],
        capture_output=True, check=True, timeout=120,
    ).stdout  # fmt: skip
    return np.frombuffer(raw, dtype=np.float32).reshape(-1, 2)


def test_segmented_encoding_is_gapless_and_matches_one_encoder(
    noisy_tones_m4a: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parallel segments decode to the same length and the same sound as one stream.

    A short pre-roll at a low bitrate leaves the later encoder's bit reservoir out of
    step with the earlier one's, so cuts need a widened frame (checked) and the
    borrowed reservoir bytes. A gap, a drift or a broken reservoir at a cut would
    show as a burst of error around it; what remains is quantisation noise.
    """
    monkeypatch.setattr(segments, "PREROLL_FRAMES", 4)
    cuts: list[segments.Cut] = []
    real_splice = segments.splice

    def recording_splice(
        a: segments.EncodedSegment, b: segments.EncodedSegment, cut: segments.Cut
    ) -> tuple[list[bytes], list[bytes]]:
        cuts.append(cut)
        return real_splice(a, b, cut)

    monkeypatch.setattr("converter_svc.encoding.splice", recording_splice)
    (tmp_path / "one").mkdir()
    (tmp_path / "many").mkdir()
    one, one_mp3 = convert(noisy_tones_m4a, tmp_path / "one", threads=1, bitrate_kbps=96)
    many, many_mp3 = convert(noisy_tones_m4a, tmp_path / "many", threads=3, bitrate_kbps=96)
    assert len(cuts) >= 2 and any(cut.widen_to_kbps for cut in cuts), cuts
    assert one.duration_s == many.duration_s
    check_mp3(many_mp3, source=noisy_tones_m4a, channels=2, title=None)
    a, b = _decode_pcm(one_mp3), _decode_pcm(many_mp3)
    assert a.shape == b.shape
    window = 1152
    worst = max(
        float(np.abs(a[i : i + window] - b[i : i + window]).max())
        for i in range(0, len(a) - window, window)
    )
    assert worst < 0.15, worst  # quantisation noise; a glitch or a shift is far larger


def test_the_lameenc_fallback_gives_the_same_kind_of_file(
    make_media: Generate, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MP3MESH_MP3_ENCODER", "lameenc")
    assert lame.system_lame() is None
    path = make_media(
        "fallback.m4a",
        ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=30",
         "-ac", "2", "-c:a", "aac"],
    )  # fmt: skip
    result, out = convert(path, tmp_path, title="fallback", threads=2)
    check_mp3(out, source=path, channels=2, title="fallback")
    assert result.sample_rate == 44100


def test_info_frame_counts_match_what_lame_emits() -> None:
    make = lame.encoder_factory(sample_rate=48000, channels=1, bitrate_kbps=128)
    for samples in (1, 575, 576, 1151, 1152, 1153, 48_000, 100_003):
        encoder = make()
        width = 2 if encoder.sample_format == "s16" else 4
        planes: list[bytes | int] = [bytes(width * samples)]  # mono: one plane either way
        splitter = FrameSplitter()
        frames = list(splitter.feed(encoder.encode(planes, samples)))
        frames += list(splitter.feed(encoder.flush()))
        counts = info_frame_counts(samples, sample_rate=48000, encoder_delay=encoder.encoder_delay)
        assert len(frames) == counts.expected_frames, samples
        assert counts.frames <= counts.expected_frames
        for frame in frames:
            header = parse_header(frame)
            assert header is not None and header.frame_size == len(frame)
            assert parse_side_info(frame, header).main_data_begin <= 511
