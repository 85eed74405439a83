"""MP3 encoders: Debian's libmp3lame through ctypes, or the ``lameenc`` wheel.

Why not PyAV's own ``libmp3lame`` encoder: the LAME inside the PyAV wheel is about
4x slower than Debian's build of the same LAME 3.100 (see docs/benchmarks.md), and
the MP3 encoder is where nearly all of a conversion's time goes. Debian's
``libmp3lame.so.0`` (package libmp3lame0, which the ffmpeg package pulls in) is
called directly: ctypes releases the GIL for the call, so LAME can run on the
second core while Python decodes. Samples go in as 32-bit integers converted (and
clipped) by libswresample: LAME's float entry points abort the whole process on a
NaN (an assertion in psymodel.c), which a corrupt input could produce, and 16-bit
input costs LAME ~10% more CPU than float or 32-bit input of the same audio (its
quantisation noise is more for the psychoacoustic model to analyse; measured).
When that library is absent the ``lameenc`` wheel (its own, slower LAME build,
which takes interleaved 16-bit samples and also releases the GIL) is the fallback.

Both encoders are set up like ffmpeg's ``-c:a libmp3lame -b:a N``: CBR, joint
stereo for two channels, bit reservoir on, LAME's default algorithm quality
(3, which is what ffmpeg leaves LAME at unless ``-compression_level`` is given),
and no Xing/LAME tag frame of LAME's own (the converter writes it, see mp3_tags).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from collections.abc import Callable
from typing import Protocol

import lameenc

#: LAME's own default quality (lame.c: LAME_DEFAULT_QUALITY), as used by ffmpeg.
DEFAULT_QUALITY = 3
#: Samples LAME prepends before the first input sample (ENCDELAY in LAME 3.100).
LAME_ENCODER_DELAY = 576

_LIB_NAMES = ("libmp3lame.so.0", "libmp3lame.so")
_ENV_FORCE = "MP3MESH_MP3_ENCODER"  # "lameenc" forces the fallback (tests, bench)


class EncoderError(RuntimeError):
    """LAME refused a setting or failed mid-stream (a bug or a broken library)."""


class Mp3Encoder(Protocol):
    """One LAME stream: PCM in, MP3 bytes out (not frame-aligned)."""

    #: PyAV sample format this encoder wants: "s32p" (planar) or "s16" (interleaved).
    sample_format: str
    encoder_delay: int
    #: Whether ``encode`` takes raw addresses (ints) as well as bytes.
    accepts_addresses: bool

    def encode(self, planes: list[bytes | int], samples: int) -> bytes:
        """Encode ``samples`` per channel. ``planes`` holds one buffer per channel
        for planar formats or one interleaved buffer; an int is a raw address
        (a PyAV plane's ``buffer_ptr``) that must stay valid during the call."""
        ...

    def flush(self) -> bytes: ...

    def close(self) -> None: ...


def _load_library() -> ctypes.CDLL | None:
    for name in _LIB_NAMES:
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        if hasattr(lib, "lame_encode_buffer_int"):
            return _declare(lib)
    found = ctypes.util.find_library("mp3lame")
    if found:
        try:
            return _declare(ctypes.CDLL(found))
        except (OSError, AttributeError):
            return None
    return None


def _declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    vp, i = ctypes.c_void_p, ctypes.c_int
    lib.lame_init.restype = vp
    lib.lame_init.argtypes = []
    for name in (
        "lame_set_in_samplerate",
        "lame_set_out_samplerate",
        "lame_set_num_channels",
        "lame_set_brate",
        "lame_set_quality",
        "lame_set_mode",
        "lame_set_bWriteVbrTag",
    ):
        getattr(lib, name).argtypes = [vp, i]
        getattr(lib, name).restype = i
    for name in ("lame_init_params", "lame_get_encoder_delay", "lame_close"):
        getattr(lib, name).argtypes = [vp]
        getattr(lib, name).restype = i
    lib.lame_encode_buffer_int.argtypes = [vp, vp, vp, i, vp, i]
    lib.lame_encode_buffer_int.restype = i
    lib.lame_encode_flush.argtypes = [vp, vp, i]
    lib.lame_encode_flush.restype = i
    lib.get_lame_version.restype = ctypes.c_char_p
    lib.get_lame_version.argtypes = []
    return lib


_lib_lock = threading.Lock()
_lib_cache: list[ctypes.CDLL | None] = []


def system_lame() -> ctypes.CDLL | None:
    """Debian's libmp3lame, loaded once; None when missing or disabled by env."""
    if os.environ.get(_ENV_FORCE, "").lower() == "lameenc":
        return None
    with _lib_lock:
        if not _lib_cache:
            _lib_cache.append(_load_library())
        return _lib_cache[0]


def lame_version() -> str:
    """LAME's version string ("3.100"); lameenc bundles the same release."""
    lib = system_lame()
    return lib.get_lame_version().decode() if lib is not None else "3.100"


def backend_name() -> str:
    """Which encoder a new stream gets, with its LAME version, for logs and the bench."""
    lib = system_lame()
    if lib is not None:
        return f"libmp3lame.so.0 (LAME {lame_version()}) via ctypes"
    return f"lameenc {getattr(lameenc, '__version__', '?')} (fallback)"


class CtypesLame:
    """A LAME stream on Debian's libmp3lame, fed planar signed 32-bit samples."""

    sample_format = "s32p"
    accepts_addresses = True

    def __init__(
        self,
        lib: ctypes.CDLL,
        *,
        sample_rate: int,
        channels: int,
        bitrate_kbps: int,
        quality: int = DEFAULT_QUALITY,
    ) -> None:
        self._lib = lib
        handle = lib.lame_init()
        if not handle:
            raise EncoderError("lame_init failed")
        self._gfp: int | None = handle
        self._channels = channels
        ok = (
            lib.lame_set_in_samplerate(handle, sample_rate) == 0
            and lib.lame_set_out_samplerate(handle, sample_rate) == 0
            and lib.lame_set_num_channels(handle, channels) == 0
            and lib.lame_set_brate(handle, bitrate_kbps) == 0
            and lib.lame_set_quality(handle, quality) == 0
            and lib.lame_set_mode(handle, 3 if channels == 1 else 1) == 0  # MONO / JOINT
            and lib.lame_set_bWriteVbrTag(handle, 0) == 0
            and lib.lame_init_params(handle) >= 0
        )
        if not ok:
            self.close()
            raise EncoderError(f"LAME refused {sample_rate} Hz, {channels} ch, {bitrate_kbps} kb/s")
        self.encoder_delay = int(lib.lame_get_encoder_delay(handle))
        self._out = ctypes.create_string_buffer(8192)

    def _buffer(self, samples: int) -> ctypes.Array[ctypes.c_char]:
        need = samples * 5 // 4 + 7200  # LAME's documented worst case
        if len(self._out) < need:
            self._out = ctypes.create_string_buffer(need)
        return self._out

    def encode(self, planes: list[bytes | int], samples: int) -> bytes:
        if self._gfp is None:
            raise EncoderError("encoder is closed")
        for plane in planes:
            if not isinstance(plane, int) and len(plane) < samples * 4:
                raise EncoderError("PCM buffer shorter than the sample count")  # not a segfault
        out = self._buffer(samples)
        right = planes[1] if self._channels == 2 else planes[0]
        n = self._lib.lame_encode_buffer_int(self._gfp, planes[0], right, samples, out, len(out))
        if n < 0:
            raise EncoderError(f"lame_encode_buffer_int failed ({n})")
        return ctypes.string_at(out, n)

    def flush(self) -> bytes:
        if self._gfp is None:
            raise EncoderError("encoder is closed")
        out = self._buffer(0)
        n = self._lib.lame_encode_flush(self._gfp, out, len(out))
        if n < 0:
            raise EncoderError(f"lame_encode_flush failed ({n})")
        return ctypes.string_at(out, n)

    def close(self) -> None:
        if self._gfp is not None:
            self._lib.lame_close(self._gfp)
            self._gfp = None

    def __del__(self) -> None:
        self.close()


class LameencLame:
    """A LAME stream on the ``lameenc`` wheel, fed interleaved signed 16-bit PCM."""

    sample_format = "s16"
    encoder_delay = LAME_ENCODER_DELAY
    accepts_addresses = False

    def __init__(
        self, *, sample_rate: int, channels: int, bitrate_kbps: int, quality: int = DEFAULT_QUALITY
    ) -> None:
        enc = lameenc.Encoder()
        enc.set_bit_rate(bitrate_kbps)
        enc.set_in_sample_rate(sample_rate)
        enc.set_out_sample_rate(sample_rate)
        enc.set_channels(channels)
        enc.set_quality(quality)
        self._enc: lameenc.Encoder | None = enc

    def encode(self, planes: list[bytes | int], samples: int) -> bytes:
        data = planes[0]
        if self._enc is None or isinstance(data, int):
            raise EncoderError("lameenc takes interleaved bytes from an open encoder")
        return bytes(self._enc.encode(data))

    def flush(self) -> bytes:
        if self._enc is None:
            raise EncoderError("encoder is closed")
        data = bytes(self._enc.flush())
        self._enc = None
        return data

    def close(self) -> None:
        self._enc = None


EncoderFactory = Callable[[], Mp3Encoder]


def encoder_factory(
    *, sample_rate: int, channels: int, bitrate_kbps: int, quality: int = DEFAULT_QUALITY
) -> EncoderFactory:
    """Return a maker of identically configured encoders (one per segment)."""
    lib = system_lame()
    if lib is not None:
        found = lib

        def make_ctypes() -> Mp3Encoder:
            return CtypesLame(
                found,
                sample_rate=sample_rate,
                channels=channels,
                bitrate_kbps=bitrate_kbps,
                quality=quality,
            )

        return make_ctypes

    def make_lameenc() -> Mp3Encoder:
        return LameencLame(
            sample_rate=sample_rate, channels=channels, bitrate_kbps=bitrate_kbps, quality=quality
        )

    return make_lameenc
