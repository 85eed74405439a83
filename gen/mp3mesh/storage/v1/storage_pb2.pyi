from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Bucket(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BUCKET_UNSPECIFIED: _ClassVar[Bucket]
    BUCKET_VIDEOS: _ClassVar[Bucket]
    BUCKET_MP3S: _ClassVar[Bucket]
BUCKET_UNSPECIFIED: Bucket
BUCKET_VIDEOS: Bucket
BUCKET_MP3S: Bucket

class BlobRef(_message.Message):
    __slots__ = ("bucket", "file_id", "filename", "content_type", "size_bytes", "sha256")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    FILE_ID_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    bucket: Bucket
    file_id: str
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    def __init__(self, bucket: _Optional[_Union[Bucket, str]] = ..., file_id: _Optional[str] = ..., filename: _Optional[str] = ..., content_type: _Optional[str] = ..., size_bytes: _Optional[int] = ..., sha256: _Optional[str] = ...) -> None: ...
