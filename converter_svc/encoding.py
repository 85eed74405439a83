"""Feeding PCM to LAME: one encoder in order, or segments on several threads.

Sequential: one encoder, output written as it comes. Used for short inputs, for
320 kb/s (no larger frame to widen at a cut, see segments.py) and when one thread
is asked for.

Segmented: the decoded PCM is cut into segments of ``segment_frames`` MP3 frames
(with pre- and post-roll), each encoded by its own LAME instance on a worker
thread (LAME runs without the GIL), and the results are joined in order as they
complete. Memory stays bounded: at most ``workers + 1`` segments of PCM (a few MB
each) are alive, and each segment's MP3 is written once the next one has been
joined to it. The decoding thread itself stays busy demuxing and resampling.
"""

from __future__ import annotations

import ctypes
import logging
from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from converter_svc.audio_source import PcmBlock
from converter_svc.io_types import ByteSink
from converter_svc.lame import EncoderFactory
from converter_svc.mp3_frames import FrameSplitter
from converter_svc.segments import (
    FRAME_SAMPLES,
    EncodedSegment,
    Segment,
    choose_cut,
    plan_segment,
    splice,
)

log = logging.getLogger(__name__)

WRITE_CHUNK = 64 * 1024  # coalesce LAME's small outputs into sink writes
#: Encoder input per LAME call: big calls keep ctypes/GIL overhead negligible.
FEED_SAMPLES = 32 * FRAME_SAMPLES


class SinkWriter:
    """Writes to the caller's sink in chunks of about WRITE_CHUNK, counting bytes."""

    def __init__(self, sink: ByteSink) -> None:
        self._sink = sink
        self._buffer = bytearray()
        self.bytes_written = 0

    def write(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) >= WRITE_CHUNK:
            self.flush()

    def flush(self) -> None:
        if self._buffer:
            self._sink.write(bytes(self._buffer))
            self.bytes_written += len(self._buffer)
            self._buffer.clear()


def encode_sequential(
    blocks: Iterable[PcmBlock], make_encoder: EncoderFactory, out: SinkWriter
) -> int:
    """One encoder over the whole stream; returns the samples encoded."""
    encoder = make_encoder()
    total = 0
    try:
        for block in blocks:
            out.write(encoder.encode(list(block.planes), block.samples))
            total += block.samples
        out.write(encoder.flush())
    finally:
        encoder.close()
    return total


@dataclass
class _Filling:
    """PCM being gathered for one segment, into buffers allocated once."""

    segment: Segment
    planes: list[bytearray]
    filled: int = 0  # samples gathered so far

    @classmethod
    def start(cls, segment: Segment, planes: int, bytes_per_sample: int) -> _Filling:
        span = (segment.feed_end or segment.feed_start) - segment.feed_start
        return cls(segment, [bytearray(span * bytes_per_sample) for _ in range(planes)])

    @property
    def wanted(self) -> int | None:
        end = self.segment.feed_end
        return None if end is None else end - self.segment.feed_start


def _encode_segment(
    make_encoder: EncoderFactory, filling: _Filling, *, final: bool, bytes_per_sample: int
) -> EncodedSegment:
    """Runs on a worker thread: one LAME stream over one segment's PCM.

    The PCM is handed to LAME by address (no copies) when the encoder takes that.
    """
    encoder = make_encoder()
    splitter = FrameSplitter()
    frames: list[bytes] = []
    step = FEED_SAMPLES * bytes_per_sample
    total = filling.filled * bytes_per_sample
    exports = (
        [(ctypes.c_char * len(p)).from_buffer(p) for p in filling.planes]
        if encoder.accepts_addresses
        else []
    )
    addresses = [ctypes.addressof(e) for e in exports]
    views = [memoryview(p) for p in filling.planes]
    try:
        for lo in range(0, total, step):
            hi = min(total, lo + step)
            chunk: list[bytes | int] = (
                [a + lo for a in addresses] if addresses else [bytes(v[lo:hi]) for v in views]
            )
            frames.extend(splitter.feed(encoder.encode(chunk, (hi - lo) // bytes_per_sample)))
        if final:
            frames.extend(splitter.feed(encoder.flush()))
    finally:
        encoder.close()
        for view in views:
            view.release()
        del exports  # release the buffer exports before the bytearrays go
    filling.planes.clear()  # free the PCM as soon as it is encoded
    return EncodedSegment(first=filling.segment.first_frame, frames=frames)


@dataclass
class _Joiner:
    """Joins finished segments in order and writes what is final."""

    out: SinkWriter
    carry: EncodedSegment | None = None
    cuts: list[int] = field(default_factory=list)
    widened: int = 0

    def add(self, segment: Segment, encoded: EncodedSegment) -> None:
        if self.carry is None:
            self.carry = encoded
            return
        cut = choose_cut(self.carry, encoded, segment.cut_frame)
        if not cut.windows_match:
            log.warning("segment cut at frame %d has mismatched windows", cut.frame)
        self.widened += cut.widen_to_kbps is not None
        head, tail = splice(self.carry, encoded, cut)
        for frame in head:
            self.out.write(frame)
        self.cuts.append(cut.frame)
        self.carry = EncodedSegment(first=cut.frame, frames=tail)

    def finish(self) -> None:
        if self.carry is not None:
            for frame in self.carry.frames:
                self.out.write(frame)
            self.carry = None


def encode_segmented(
    blocks: Iterable[PcmBlock],
    make_encoder: EncoderFactory,
    out: SinkWriter,
    *,
    workers: int,
    segment_frames: int,
    bytes_per_sample: int,
    channels_in_planes: int,
) -> int:
    """Encode in parallel segments; returns the samples encoded.

    ``bytes_per_sample`` is per plane (2 for planar s16, 2*channels interleaved);
    ``channels_in_planes`` is how many planes a PcmBlock carries.
    """
    joiner = _Joiner(out)
    pending: deque[tuple[Segment, Future[EncodedSegment]]] = deque()
    filling: list[_Filling] = []
    next_index = 0
    pos = 0

    def drain(block_until: int) -> None:
        while pending and (len(pending) > block_until or pending[0][1].done()):
            segment, future = pending.popleft()
            joiner.add(segment, future.result())

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lame") as pool:

        def submit(item: _Filling, *, final: bool) -> None:
            future = pool.submit(
                _encode_segment,
                make_encoder,
                item,
                final=final,
                bytes_per_sample=bytes_per_sample,
            )
            pending.append((item.segment, future))

        try:
            for block in blocks:
                end = pos + block.samples
                while (candidate := plan_segment(next_index, segment_frames)).feed_start < end:
                    filling.append(_Filling.start(candidate, channels_in_planes, bytes_per_sample))
                    next_index += 1
                for item in list(filling):
                    wanted = item.wanted
                    start = item.segment.feed_start + item.filled
                    stop = end if wanted is None else min(end, item.segment.feed_start + wanted)
                    if stop > start:
                        lo = (start - pos) * bytes_per_sample
                        hi = (stop - pos) * bytes_per_sample
                        at = item.filled * bytes_per_sample
                        for plane, data in zip(item.planes, block.planes, strict=True):
                            plane[at : at + hi - lo] = memoryview(data)[lo:hi]
                        item.filled += stop - start
                    if wanted is not None and item.filled >= wanted:
                        filling.remove(item)
                        submit(item, final=False)
                pos = end
                drain(block_until=workers)
            # End of input: the lowest unfinished segment is the last one; any
            # later one only holds pre-roll of audio that is already covered.
            if filling:
                last = filling[0]
                last.segment = Segment(
                    index=last.segment.index,
                    cut_frame=last.segment.cut_frame,
                    feed_start=last.segment.feed_start,
                    feed_end=None,
                )
                submit(last, final=True)
            filling.clear()
            drain(block_until=0)
        except BaseException:
            for _, future in pending:
                future.cancel()
            raise
    joiner.finish()
    log.debug("segmented encode: cuts at %s, %d widened", joiner.cuts, joiner.widened)
    return pos
