"""An open MP3 download: the checks done, the blob reader ready, the headers' facts known.

Both faces open a download the same way (`GatewayCore.open_download`) and then stream it their
own way: REST with HTTP Range, gRPC with offset/limit. Reading goes chunk range by chunk range
(`BlobReader.iter_range`), so memory stays a few MiB whatever the MP3's size, and nx-27017's
single-reply limit is never hit.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from mp3mesh.jobs.v1 import jobs_pb2

from gateway_svc.ranges import mp3_filename
from meshkit.blobstore import BlobReader

MP3_CONTENT_TYPE = "audio/mpeg"
PIECE_BYTES = 256 * 1024


@dataclass
class Mp3Download:
    job: jobs_pb2.Job
    reader: BlobReader

    @property
    def size(self) -> int:
        return self.reader.length

    @property
    def sha256(self) -> str:
        return self.reader.ref.sha256

    @property
    def filename(self) -> str:
        return mp3_filename(self.job.filename)

    @property
    def etag(self) -> str:
        return f'"{self.sha256}"' if self.sha256 else f'"{self.reader.ref.file_id}"'

    def pieces(self, start: int, end_inclusive: int) -> Iterator[bytes]:
        """Bytes start..end_inclusive; closes the reader when done or abandoned."""
        try:
            if self.size and end_inclusive >= start:
                yield from self.reader.iter_range(start, end_inclusive, piece=PIECE_BYTES)
        finally:
            self.close()

    def close(self) -> None:
        self.reader.close()
