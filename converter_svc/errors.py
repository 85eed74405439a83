"""Why a conversion failed, in the words the job record and the user's email use.

A ConversionError is an answer about the media ("this file has no audio"), never a
transient fault: storage and broker errors raised by the src/sink objects pass
through transcode_to_mp3 unchanged so that the caller can retry them.
"""

from __future__ import annotations

from typing import Final, Literal

Reason = Literal["NO_AUDIO", "CORRUPT_MEDIA", "UNSUPPORTED_MEDIA", "TOO_LONG", "INTERNAL"]

NO_AUDIO: Final = "NO_AUDIO"
CORRUPT_MEDIA: Final = "CORRUPT_MEDIA"
UNSUPPORTED_MEDIA: Final = "UNSUPPORTED_MEDIA"
TOO_LONG: Final = "TOO_LONG"
INTERNAL: Final = "INTERNAL"

REASONS: Final[frozenset[str]] = frozenset(
    {NO_AUDIO, CORRUPT_MEDIA, UNSUPPORTED_MEDIA, TOO_LONG, INTERNAL}
)


class ConversionError(Exception):
    """The media cannot be converted; ``reason`` says why, ``str(err)`` says it plainly."""

    reason: Reason

    def __init__(self, reason: Reason, message: str) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown conversion failure reason {reason!r}")
        super().__init__(message)
        self.reason = reason
        self.message = message

    def __repr__(self) -> str:
        return f"ConversionError({self.reason!r}, {self.message!r})"
