import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from mp3mesh.storage.v1 import storage_pb2 as _storage_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATE_UNSPECIFIED: _ClassVar[JobState]
    JOB_STATE_QUEUED: _ClassVar[JobState]
    JOB_STATE_CONVERTING: _ClassVar[JobState]
    JOB_STATE_DONE: _ClassVar[JobState]
    JOB_STATE_FAILED: _ClassVar[JobState]

class FailureReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FAILURE_REASON_UNSPECIFIED: _ClassVar[FailureReason]
    FAILURE_REASON_NO_AUDIO: _ClassVar[FailureReason]
    FAILURE_REASON_UNSUPPORTED_MEDIA: _ClassVar[FailureReason]
    FAILURE_REASON_CORRUPT_MEDIA: _ClassVar[FailureReason]
    FAILURE_REASON_TOO_LONG: _ClassVar[FailureReason]
    FAILURE_REASON_INTERNAL: _ClassVar[FailureReason]
JOB_STATE_UNSPECIFIED: JobState
JOB_STATE_QUEUED: JobState
JOB_STATE_CONVERTING: JobState
JOB_STATE_DONE: JobState
JOB_STATE_FAILED: JobState
FAILURE_REASON_UNSPECIFIED: FailureReason
FAILURE_REASON_NO_AUDIO: FailureReason
FAILURE_REASON_UNSUPPORTED_MEDIA: FailureReason
FAILURE_REASON_CORRUPT_MEDIA: FailureReason
FAILURE_REASON_TOO_LONG: FailureReason
FAILURE_REASON_INTERNAL: FailureReason

class Failure(_message.Message):
    __slots__ = ("reason", "message")
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    reason: FailureReason
    message: str
    def __init__(self, reason: _Optional[_Union[FailureReason, str]] = ..., message: _Optional[str] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ("job_id", "owner_id", "owner_email", "filename", "state", "bitrate_kbps", "video", "mp3", "mp3_duration_s", "failure", "create_time", "update_time", "finish_time", "notify_time", "trace_id")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_EMAIL_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    BITRATE_KBPS_FIELD_NUMBER: _ClassVar[int]
    VIDEO_FIELD_NUMBER: _ClassVar[int]
    MP3_FIELD_NUMBER: _ClassVar[int]
    MP3_DURATION_S_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    FINISH_TIME_FIELD_NUMBER: _ClassVar[int]
    NOTIFY_TIME_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    owner_id: str
    owner_email: str
    filename: str
    state: JobState
    bitrate_kbps: int
    video: _storage_pb2.BlobRef
    mp3: _storage_pb2.BlobRef
    mp3_duration_s: float
    failure: Failure
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    finish_time: _timestamp_pb2.Timestamp
    notify_time: _timestamp_pb2.Timestamp
    trace_id: str
    def __init__(self, job_id: _Optional[str] = ..., owner_id: _Optional[str] = ..., owner_email: _Optional[str] = ..., filename: _Optional[str] = ..., state: _Optional[_Union[JobState, str]] = ..., bitrate_kbps: _Optional[int] = ..., video: _Optional[_Union[_storage_pb2.BlobRef, _Mapping]] = ..., mp3: _Optional[_Union[_storage_pb2.BlobRef, _Mapping]] = ..., mp3_duration_s: _Optional[float] = ..., failure: _Optional[_Union[Failure, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finish_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., notify_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., trace_id: _Optional[str] = ...) -> None: ...

class ConversionRequested(_message.Message):
    __slots__ = ("job_id", "owner_id", "owner_email", "video", "bitrate_kbps", "filename", "request_time")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_EMAIL_FIELD_NUMBER: _ClassVar[int]
    VIDEO_FIELD_NUMBER: _ClassVar[int]
    BITRATE_KBPS_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    REQUEST_TIME_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    owner_id: str
    owner_email: str
    video: _storage_pb2.BlobRef
    bitrate_kbps: int
    filename: str
    request_time: _timestamp_pb2.Timestamp
    def __init__(self, job_id: _Optional[str] = ..., owner_id: _Optional[str] = ..., owner_email: _Optional[str] = ..., video: _Optional[_Union[_storage_pb2.BlobRef, _Mapping]] = ..., bitrate_kbps: _Optional[int] = ..., filename: _Optional[str] = ..., request_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Mp3Ready(_message.Message):
    __slots__ = ("mp3", "duration_s", "bitrate_kbps")
    MP3_FIELD_NUMBER: _ClassVar[int]
    DURATION_S_FIELD_NUMBER: _ClassVar[int]
    BITRATE_KBPS_FIELD_NUMBER: _ClassVar[int]
    mp3: _storage_pb2.BlobRef
    duration_s: float
    bitrate_kbps: int
    def __init__(self, mp3: _Optional[_Union[_storage_pb2.BlobRef, _Mapping]] = ..., duration_s: _Optional[float] = ..., bitrate_kbps: _Optional[int] = ...) -> None: ...

class ConversionFinished(_message.Message):
    __slots__ = ("job_id", "owner_id", "owner_email", "filename", "mp3", "failure", "finish_time")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_EMAIL_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    MP3_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    FINISH_TIME_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    owner_id: str
    owner_email: str
    filename: str
    mp3: Mp3Ready
    failure: Failure
    finish_time: _timestamp_pb2.Timestamp
    def __init__(self, job_id: _Optional[str] = ..., owner_id: _Optional[str] = ..., owner_email: _Optional[str] = ..., filename: _Optional[str] = ..., mp3: _Optional[_Union[Mp3Ready, _Mapping]] = ..., failure: _Optional[_Union[Failure, _Mapping]] = ..., finish_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
