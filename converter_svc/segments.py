"""Joining independently encoded MP3 segments without a gap, a click or drift.

Why segments at all: LAME is single-threaded and is ~95% of a conversion's time;
cutting the audio into segments and encoding two at a time uses the second core.
A naive join of separate MP3 files would insert each encoder's start-up delay
(576 samples plus decoder delay) at every cut and break the bit reservoir. Here
every segment's encoder starts on the same 1152-sample frame grid as a single
encoder would, a few frames *before* its nominal start (pre-roll) so that its
filterbank and psychoacoustic model have settled, and the previous segment's
encoder runs a few frames past the cut (post-roll). Both therefore produce frames
for the same global frame numbers around the cut, encoding the same samples.

The join takes frames ``< g`` from the earlier encoder (A) and frames ``>= g`` from
the later one (B), at a frame ``g`` chosen where the two agree on the window shape
across the cut (so the IMDCT overlap-add is the one a single encoder would have
produced) and where B's first kept frame borrows no more bytes from the bit
reservoir (``main_data_begin``) than A's frame ``g`` did. Those borrowed bytes are
then copied from B's stream into the tail of A's reservoir, which A's own frames
``< g`` never use (that space held A's frame ``g``'s data). When B's reservoir runs
ahead of A's everywhere near the cut, A's frame ``g - 1`` is re-headered at a higher
bitrate, which gives its slot the room (decoders take per-frame bitrate changes;
this is why 320 kb/s, having no higher bitrate, is never segmented). The result is
a single valid Layer III stream whose frame count, and so duration, equals a
single encoder's; only the quantisation noise of the frames after the cut differs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from converter_svc.mp3_frames import (
    MPEG1_BITRATES,
    FrameHeader,
    SideInfo,
    parse_header,
    parse_side_info,
)

FRAME_SAMPLES = 1152  # MPEG-1 Layer III; segmenting is only used for MPEG-1 output
PREROLL_FRAMES = 24  # B starts this many frames before the nominal cut
POSTROLL_FRAMES = 10  # A runs this many frames past the nominal cut
WARMUP_FRAMES = 4  # B's first frames are never kept
_LAG_FRAMES = 3  # A's last frames may not be complete without a flush
_MIN_HEAD_FRAMES = 4  # A frames kept before the cut: room for 511 reservoir bytes


class SpliceError(Exception):
    """No frame near the cut satisfies the join conditions."""


@dataclass(frozen=True)
class Segment:
    """One encoder's share of the audio, in global samples on the frame grid."""

    index: int
    cut_frame: int  # first global frame this segment should supply (0 for the first)
    feed_start: int  # first global sample fed to its encoder
    feed_end: int | None  # sample after the last one fed; None = to the end (flushed)

    @property
    def first_frame(self) -> int:
        """Global index of the encoder's first output frame."""
        return self.feed_start // FRAME_SAMPLES


def plan_segment(index: int, segment_frames: int) -> Segment:
    """Segment ``index`` of a stream cut every ``segment_frames`` frames.

    The last segment is not known here (the total length may be unknown); the
    caller turns the final one into a flushed one by giving it ``feed_end=None``.
    """
    cut = index * segment_frames
    start = max(0, cut - PREROLL_FRAMES) * FRAME_SAMPLES
    end = ((index + 1) * segment_frames + POSTROLL_FRAMES) * FRAME_SAMPLES
    return Segment(index=index, cut_frame=cut, feed_start=start, feed_end=end)


@dataclass
class EncodedSegment:
    """An encoder's whole frames, numbered globally from ``first``."""

    first: int
    frames: list[bytes]

    def frame(self, g: int) -> bytes | None:
        i = g - self.first
        return self.frames[i] if 0 <= i < len(self.frames) else None


def _info(frame: bytes) -> tuple[FrameHeader, SideInfo]:
    header = parse_header(frame)
    if header is None:
        raise SpliceError("not a frame")
    return header, parse_side_info(frame, header)


@dataclass(frozen=True)
class Cut:
    """Where B takes over (global frame ``g``) and, if needed, the bitrate that A's
    frame ``g - 1`` is raised to so that its slot has room for B's reservoir bytes."""

    frame: int
    widen_to_kbps: int | None = None
    windows_match: bool = True


def _widened(frame: bytes, need: int) -> int | None:
    """Smallest MPEG-1 bitrate giving ``frame`` at least ``need`` more bytes."""
    header, _ = _info(frame)
    if not header.mpeg1:
        return None
    for kbps in MPEG1_BITRATES:
        size = 144 * kbps * 1000 // header.sample_rate + header.padding
        if kbps > header.bitrate_kbps and size - header.frame_size >= need:
            return kbps
    return None


def choose_cut(a: EncodedSegment, b: EncodedSegment, nominal: int) -> Cut:
    """Pick the global frame where B takes over from A, as near ``nominal`` as possible.

    Preferred: a frame where both encoders chose the same window shape across the
    cut and B's frame borrows no more reservoir bytes than A's frame did. B starts
    with an empty reservoir that fills during pre-roll, while A's level depends on
    its whole history, so for demanding audio B can stay ahead of A for a long
    time; then A's last frame before the cut is widened to the next bitrate with
    enough room (a single larger frame: decoders take bitrate changes per frame).
    Window agreement is only dropped when no candidate has it, which costs a
    faint alias in one granule, never a gap.
    """
    lo = b.first + WARMUP_FRAMES
    hi = a.first + len(a.frames) - _LAG_FRAMES
    candidates = sorted(range(lo, hi + 1), key=lambda g: (abs(g - nominal), g))
    usable: list[tuple[int, int, bool]] = []  # (g, extra bytes needed, windows match)
    for g in candidates:
        a_prev, a_at, b_prev, b_at = a.frame(g - 1), a.frame(g), b.frame(g - 1), b.frame(g)
        if a_prev is None or a_at is None or b_prev is None or b_at is None:
            continue
        if g - a.first < _MIN_HEAD_FRAMES:
            continue
        match = _info(a_prev)[1].last_windows == _info(b_prev)[1].last_windows
        need = _info(b_at)[1].main_data_begin - _info(a_at)[1].main_data_begin
        if match and need <= 0:
            return Cut(g)
        usable.append((g, need, match))
    for want_match in (True, False):
        for g, need, match in usable:
            if match != want_match:
                continue
            if need <= 0:
                return Cut(g, windows_match=match)
            frame = a.frame(g - 1)
            widen = _widened(frame, need) if frame is not None else None
            if widen is not None:
                return Cut(g, widen, windows_match=match)
    raise SpliceError(f"no joinable frame between {lo} and {hi}")


def _data_slices(frames: Sequence[bytes | bytearray], n: int) -> list[tuple[int, int, int]]:
    """(frame index, start, end) slices holding the last ``n`` main-data bytes."""
    out: list[tuple[int, int, int]] = []
    need = n
    i = len(frames) - 1
    while need > 0 and i >= 0:
        header = parse_header(frames[i])
        if header is None:
            raise SpliceError("not a frame")
        start, end = header.data_offset, len(frames[i])
        take = min(need, end - start)
        out.append((i, end - take, end))
        need -= take
        i -= 1
    if need > 0:
        raise SpliceError("not enough frames before the cut for the reservoir")
    out.reverse()
    return out


def _widen(frame: bytes, kbps: int) -> bytearray:
    """``frame`` re-headered at ``kbps``, its main-data area extended with zeros."""
    header, _ = _info(frame)
    index = MPEG1_BITRATES.index(kbps) + 1
    raw = header.raw & ~(0xF << 12) | index << 12
    size = 144 * kbps * 1000 // header.sample_rate + header.padding
    out = bytearray(raw.to_bytes(4, "big")) + frame[4:]
    return out + bytes(size - len(out))


def splice(a: EncodedSegment, b: EncodedSegment, cut: Cut) -> tuple[list[bytes], list[bytes]]:
    """A's frames before the cut (reservoir tail patched) and B's frames from it."""
    g = cut.frame
    head = [bytearray(f) for f in a.frames[: g - a.first]]
    if cut.widen_to_kbps is not None:
        head[-1] = _widen(bytes(head[-1]), cut.widen_to_kbps)
    n = _info(b.frames[g - b.first])[1].main_data_begin
    if n:
        source = b.frames[: g - b.first]
        borrowed = b"".join(bytes(source[i][s:e]) for i, s, e in _data_slices(source, n))
        pos = 0
        for i, s, e in _data_slices(head, n):
            head[i][s:e] = borrowed[pos : pos + e - s]
            pos += e - s
    return [bytes(f) for f in head], b.frames[g - b.first :]
