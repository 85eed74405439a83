"""Recognises media containers from their first bytes.

Uploads are checked before a byte is stored, so a text file renamed `.mp4` is refused with
415 at once instead of costing a GridFS write, a queue message and a converter run. Only the
container's magic is checked, not its integrity: a damaged file with a valid header (the shared
corrupt MKV) is accepted here and failed by the converter with "corrupt media", which is the
more useful answer for the user.
"""

from __future__ import annotations

from dataclasses import dataclass

# Enough for every signature below (MPEG-TS needs the sync byte of the second packet at 188).
SNIFF_BYTES = 512
# Below this many bytes a file cannot hold any media worth converting, whatever its magic.
MIN_SNIFF_BYTES = 4

_QUICKTIME_BOXES = (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot")
_ASF_GUID = bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")


@dataclass(frozen=True)
class Container:
    """A recognised container: a short name and the MIME type to store the blob under."""

    name: str
    content_type: str


MP4 = Container("mp4", "video/mp4")
M4A = Container("m4a", "audio/mp4")
THREE_GP = Container("3gp", "video/3gpp")
QUICKTIME = Container("mov", "video/quicktime")
MATROSKA = Container("matroska", "video/x-matroska")
WEBM = Container("webm", "video/webm")
AVI = Container("avi", "video/x-msvideo")
WAV = Container("wav", "audio/wav")
MPEG_TS = Container("mpegts", "video/mp2t")
MPEG_PS = Container("mpegps", "video/mpeg")
OGG = Container("ogg", "application/ogg")
FLV = Container("flv", "video/x-flv")
ASF = Container("asf", "video/x-ms-asf")
MP3 = Container("mp3", "audio/mpeg")
FLAC = Container("flac", "audio/flac")
AAC = Container("aac", "audio/aac")


def _iso_bmff(head: bytes) -> Container | None:
    if len(head) >= 12 and head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand.startswith(b"3g"):
            return THREE_GP
        if brand in (b"M4A ", b"M4B ", b"M4P "):
            return M4A
        if brand == b"qt  ":
            return QUICKTIME
        return MP4
    if len(head) >= 8 and head[4:8] in _QUICKTIME_BOXES:
        return QUICKTIME  # pre-ftyp QuickTime files start straight with a top-level box
    return None


def _ebml(head: bytes) -> Container | None:
    if not head.startswith(b"\x1a\x45\xdf\xa3"):
        return None
    # The DocType ("webm" / "matroska") sits in the first few dozen bytes of the header.
    return WEBM if b"webm" in head[:64] else MATROSKA


def _riff(head: bytes) -> Container | None:
    if len(head) < 12 or head[:4] != b"RIFF":
        return None
    form = head[8:12]
    if form == b"AVI ":
        return AVI
    if form == b"WAVE":
        return WAV
    return None


def _mpeg_audio_frame(head: bytes) -> bool:
    """An MPEG-1/2/2.5 Layer I-III frame header (the sync word and no reserved values)."""
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    version = (head[1] >> 3) & 0x03
    layer = (head[1] >> 1) & 0x03
    bitrate = head[2] >> 4
    sample_rate = (head[2] >> 2) & 0x03
    return version != 0x01 and layer != 0x00 and bitrate != 0x0F and sample_rate != 0x03


def _adts(head: bytes) -> bool:
    return len(head) >= 2 and head[0] == 0xFF and head[1] in (0xF1, 0xF9)


def sniff(head: bytes) -> Container | None:
    """The container the bytes start with, or None when they are not media we accept.

    `head` should be the first `SNIFF_BYTES` bytes (fewer only if the file is shorter).
    """
    if len(head) < MIN_SNIFF_BYTES:
        return None
    found = _iso_bmff(head) or _ebml(head) or _riff(head)
    if found is not None:
        return found
    if head[0] == 0x47 and len(head) > 188 and head[188] == 0x47:
        return MPEG_TS
    if head.startswith(b"\x00\x00\x01\xba"):
        return MPEG_PS
    if head.startswith(b"OggS"):
        return OGG
    if head.startswith(b"FLV\x01"):
        return FLV
    if head.startswith(_ASF_GUID):
        return ASF
    if head.startswith(b"fLaC"):
        return FLAC
    if head.startswith(b"ID3") or _mpeg_audio_frame(head):
        return MP3
    if _adts(head):
        return AAC
    return None
