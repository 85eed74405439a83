"""The two file-like shapes the transcoder needs, as structural types.

``typing.BinaryIO`` would demand the whole file API; the GridFS reader and upload
stream only offer what is used here, and tests pass small wrappers.
"""

from __future__ import annotations

from typing import Protocol


class SeekableSource(Protocol):
    """A readable, seekable byte source (a file, a GridFS reader)."""

    def read(self, size: int = -1, /) -> bytes: ...

    def seek(self, offset: int, whence: int = 0, /) -> int: ...

    def tell(self) -> int: ...


class ByteSink(Protocol):
    """A write-only byte sink; it need not seek."""

    def write(self, data: bytes, /) -> object: ...
