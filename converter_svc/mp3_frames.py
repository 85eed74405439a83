"""MPEG audio Layer III frame parsing, just enough to split, splice and tag a stream.

The converter writes MP3 into a sink that cannot seek, so it cannot let LAME patch
a tag frame at the end as LAME's own tools do. It instead builds the ID3v2 tag and
the LAME "Info" tag frame itself, up front (see :mod:`converter_svc.mp3_tags`), and
joins independently encoded segments at frame boundaries (see
:mod:`converter_svc.segments`). Both need to read frame headers and the first bits
of the side information; nothing here decodes audio.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

# Bitrates in kb/s by [MPEG-1?][bitrate index], Layer III only.
_BITRATES_V1 = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
_BITRATES_V2 = (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)
_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}

MPEG1_SAMPLE_RATES = (32000, 44100, 48000)
MPEG1_BITRATES = _BITRATES_V1[1:]
MPEG2_BITRATES = _BITRATES_V2[1:]


@dataclass(frozen=True)
class FrameHeader:
    """The fixed 32-bit header of one Layer III frame."""

    raw: int
    mpeg1: bool
    protected: bool
    bitrate_kbps: int
    sample_rate: int
    padding: int
    mono: bool
    frame_size: int

    @property
    def samples_per_frame(self) -> int:
        return 1152 if self.mpeg1 else 576

    @property
    def side_info_size(self) -> int:
        if self.mpeg1:
            return 17 if self.mono else 32
        return 9 if self.mono else 17

    @property
    def data_offset(self) -> int:
        """Offset of the main-data area: header, optional CRC, side information."""
        return 4 + (2 if self.protected else 0) + self.side_info_size


def parse_header(data: bytes | bytearray | memoryview, offset: int = 0) -> FrameHeader | None:
    """Parse a Layer III frame header at ``offset``; None if there is none there.

    Free-format (bitrate index 0) frames are refused: their size is not in the header.
    """
    if len(data) - offset < 4:
        return None
    h = int.from_bytes(data[offset : offset + 4], "big")
    if (h >> 21) & 0x7FF != 0x7FF:
        return None
    version = (h >> 19) & 3
    layer = (h >> 17) & 3
    br_index = (h >> 12) & 0xF
    sr_index = (h >> 10) & 3
    if version == 1 or layer != 1 or br_index in (0, 15) or sr_index == 3:
        return None
    mpeg1 = version == 3
    bitrate = (_BITRATES_V1 if mpeg1 else _BITRATES_V2)[br_index]
    sample_rate = _RATES[version][sr_index]
    padding = (h >> 9) & 1
    coefficient = 144 if mpeg1 else 72
    size = coefficient * bitrate * 1000 // sample_rate + padding
    return FrameHeader(
        raw=h,
        mpeg1=mpeg1,
        protected=not (h >> 16) & 1,
        bitrate_kbps=bitrate,
        sample_rate=sample_rate,
        padding=padding,
        mono=(h >> 6) & 3 == 3,
        frame_size=size,
    )


def build_header(
    *, sample_rate: int, bitrate_kbps: int, mono: bool, padding: int = 0, mpeg1: bool = True
) -> bytes:
    """Build an unprotected Layer III header (used for the Info tag frame)."""
    version = 3 if mpeg1 else (2 if sample_rate in _RATES[2] else 0)
    rates = _RATES[version]
    bitrates = _BITRATES_V1 if mpeg1 else _BITRATES_V2
    h = 0x7FF << 21 | version << 19 | 1 << 17 | 1 << 16
    h |= bitrates.index(bitrate_kbps) << 12 | rates.index(sample_rate) << 10 | padding << 9
    h |= (3 if mono else 1) << 6  # mono, or joint stereo like LAME's own frames
    return h.to_bytes(4, "big")


class _Bits:
    """Big-endian bit reader over a bytes-like object."""

    def __init__(self, data: bytes | bytearray | memoryview, offset: int) -> None:
        self._data = data
        self._pos = offset * 8

    def read(self, n: int) -> int:
        value = 0
        for _ in range(n):
            byte = self._data[self._pos >> 3]
            value = value << 1 | (byte >> (7 - (self._pos & 7))) & 1
            self._pos += 1
        return value

    def skip(self, n: int) -> None:
        self._pos += n


@dataclass(frozen=True)
class SideInfo:
    """What splicing needs from a frame's side information.

    ``main_data_begin`` is how many bytes of this frame's main data live in the bit
    reservoir (the main-data areas of earlier frames). ``last_windows`` is, per
    channel, the (window_switching, block_type) of the frame's last granule: the
    IMDCT window shape the next frame's first granule overlaps with.
    """

    main_data_begin: int
    last_windows: tuple[tuple[int, int], ...]


def parse_side_info(frame: bytes | bytearray | memoryview, header: FrameHeader) -> SideInfo:
    """Read main_data_begin and the last granule's window per channel (MPEG-1 or 2)."""
    bits = _Bits(frame, 4 + (2 if header.protected else 0))
    channels = 1 if header.mono else 2
    if header.mpeg1:
        mdb = bits.read(9)
        bits.skip(5 if channels == 1 else 3)  # private bits
        bits.skip(4 * channels)  # scfsi
        granules = 2
    else:
        mdb = bits.read(8)
        bits.skip(1 if channels == 1 else 2)
        granules = 1
    windows: list[tuple[int, int]] = []
    for _gr in range(granules):
        windows = []
        for _ch in range(channels):
            bits.skip(12 + 9 + 8)  # part2_3_length, big_values, global_gain
            bits.skip(4 if header.mpeg1 else 9)  # scalefac_compress
            switching = bits.read(1)
            if switching:
                block_type = bits.read(2)
                bits.skip(1 + 10 + 9)  # mixed_block_flag, table_select x2, subblock_gain
            else:
                block_type = 0
                bits.skip(15 + 4 + 3)  # table_select x3, region0/1_count
            bits.skip(3 if header.mpeg1 else 2)  # preflag, scalefac_scale, count1table
            windows.append((switching, block_type))
    return SideInfo(main_data_begin=mdb, last_windows=tuple(windows))


class FrameSplitter:
    """Cuts a byte stream from an encoder into whole frames.

    LAME hands back bytes, not frames: a call can end mid-frame. Bytes that do not
    start a valid header are an encoder bug, not something to resynchronise past.
    """

    def __init__(self) -> None:
        self._pending = bytearray()

    def feed(self, data: bytes) -> Iterator[bytes]:
        self._pending += data
        start = 0
        while True:
            header = parse_header(self._pending, start)
            if header is None:
                if len(self._pending) - start >= 4:
                    raise ValueError("MP3 byte stream lost frame sync")
                break
            end = start + header.frame_size
            if end > len(self._pending):
                break
            yield bytes(self._pending[start:end])
            start = end
        del self._pending[:start]

    @property
    def pending(self) -> int:
        """Bytes held back because they do not make a whole frame yet."""
        return len(self._pending)
