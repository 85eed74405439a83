"""The notification email for a finished job: plain text + HTML, safe whatever the filename.

Everything here is a pure function of the ConversionFinished message (plus settings and the
clock), so the same job always yields the same mail — in particular the same `Message-ID`,
which lets a mail client (or a test) recognise a duplicate if one ever slips through the
crash window between "SMTP accepted" and "recorded on the job".

User text (the filename, the failure message) is treated as hostile:
* headers: control characters (CR/LF included) and bidi overrides are removed before the
  value reaches the `email` package, which then folds and RFC 2047-encodes it; the default
  policy would raise on a raw CR/LF anyway, so a header can never be injected;
* HTML: every interpolated value goes through `html.escape`.
"""

from __future__ import annotations

import datetime
import html
import re
from dataclasses import dataclass
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from urllib.parse import quote

from mp3mesh.jobs.v1 import jobs_pb2

MAX_SUBJECT_NAME = 120
# C0/C1 controls, DEL, line/paragraph separators and the bidi controls that can make
# "gpj.exe" read as "exe.jpg".
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_JOB_ID = re.compile(r"[^A-Za-z0-9._-]")

REASONS: dict[int, str] = {
    jobs_pb2.FAILURE_REASON_NO_AUDIO: "The video has no audio track, so there was nothing to"
    " convert.",
    jobs_pb2.FAILURE_REASON_UNSUPPORTED_MEDIA: "The file's format or audio codec is not one we"
    " can convert.",
    jobs_pb2.FAILURE_REASON_CORRUPT_MEDIA: "The file looks corrupt or truncated (a damaged file"
    " or an incomplete upload).",
    jobs_pb2.FAILURE_REASON_TOO_LONG: "The video is longer than the limit we convert.",
    jobs_pb2.FAILURE_REASON_INTERNAL: "An internal error on our side stopped the conversion;"
    " it is not your file's fault. Please try again later.",
}
UNKNOWN_REASON = "The conversion did not complete."


class InvalidRecipient(ValueError):
    """The job's email address can never be delivered to (a permanent failure)."""


@dataclass(frozen=True)
class MailSettings:
    """What the notice needs besides the message: who sends it and where links point."""

    sender: str
    public_base_url: str


def clean_text(text: str) -> str:
    """User text with control/bidi characters replaced by spaces and runs of spaces joined."""
    return " ".join(_UNSAFE.sub(" ", text).split())


def message_id(job_id: str) -> str:
    """The Message-ID of a job's notice: the same on every send of that job."""
    return f"<job-{_JOB_ID.sub('_', job_id)}@mp3mesh>"


def download_url(public_base_url: str, job_id: str) -> str:
    return f"{public_base_url.rstrip('/')}/v1/jobs/{quote(job_id, safe='')}/mp3"


def mp3_filename(filename: str) -> str:
    """`holiday.mov` → `holiday.mp3` (what the download's Content-Disposition names it)."""
    name = clean_text(filename) or "audio"
    stem, dot, _ext = name.rpartition(".")
    return f"{stem if dot and stem else name}.mp3"


def human_size(size_bytes: int) -> str:
    """Decimal units, as file managers show them: 999 B, 1.5 kB, 4.2 MB, 1.1 GB."""
    if size_bytes < 1000:
        return f"{max(size_bytes, 0)} B"
    value = float(size_bytes)
    for unit in ("kB", "MB", "GB", "TB"):
        value /= 1000
        if value < 999.95 or unit == "TB":
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")


def clock(seconds: float) -> str:
    """`m:ss`, or `h:mm:ss` from one hour on; rounded to the nearest second."""
    total = max(round(seconds), 0)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def failure_reason(failure: jobs_pb2.Failure) -> str:
    return REASONS.get(failure.reason, UNKNOWN_REASON)


def recipient_address(raw: str) -> Address:
    """The job's address as a header object; InvalidRecipient if it cannot be one."""
    if not raw or _UNSAFE.search(raw) or raw != raw.strip():
        raise InvalidRecipient("the job has no usable email address")
    try:
        address = Address(addr_spec=raw)
    except (ValueError, IndexError, HeaderParseError) as exc:
        raise InvalidRecipient(f"the job's email address is invalid: {exc}") from None
    if not address.username or not address.domain:
        raise InvalidRecipient("the job's email address is invalid")
    if not address.domain.isascii():
        # An internationalised domain goes out as its punycode form, which every server
        # accepts; SMTPUTF8 would only be needed for a non-ASCII local part (refused above).
        try:
            ascii_domain = address.domain.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise InvalidRecipient(f"the job's email domain is invalid: {exc}") from None
        address = Address(username=address.username, domain=ascii_domain)
    return address


def _subject_name(name: str) -> str:
    return name if len(name) <= MAX_SUBJECT_NAME else name[: MAX_SUBJECT_NAME - 1] + "…"


def compose(
    finished: jobs_pb2.ConversionFinished,
    settings: MailSettings,
    *,
    now: datetime.datetime | None = None,
) -> EmailMessage:
    """The notice for one finished job. Raises InvalidRecipient for an unusable address."""
    recipient = recipient_address(finished.owner_email)
    original = clean_text(finished.filename) or "your video"
    if finished.WhichOneof("outcome") == "mp3":
        subject = f"Your MP3 is ready: {_subject_name(mp3_filename(finished.filename))}"
        plain, rich = _ready_bodies(finished, original, settings)
    else:
        subject = f"Conversion failed: {_subject_name(original)}"
        plain, rich = _failed_bodies(finished, original)
    message = EmailMessage()
    message["From"] = settings.sender
    message["To"] = recipient
    message["Subject"] = subject
    message["Date"] = format_datetime(now or datetime.datetime.now(datetime.UTC))
    message["Message-ID"] = message_id(finished.job_id)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
    message["X-Mp3mesh-Job-Id"] = clean_text(finished.job_id)
    message.set_content(plain)
    message.add_alternative(rich, subtype="html")
    return message


def _ready_bodies(
    finished: jobs_pb2.ConversionFinished, original: str, settings: MailSettings
) -> tuple[str, str]:
    ready = finished.mp3
    link = download_url(settings.public_base_url, finished.job_id)
    facts = [
        ("Video", original),
        ("MP3", mp3_filename(finished.filename)),
        ("Size", human_size(ready.mp3.size_bytes)),
        ("Duration", clock(ready.duration_s)),
    ]
    plain = "\n".join(
        [
            "Hello,",
            "",
            "your MP3 is ready.",
            "",
            *(f"  {label + ':':<10} {value}" for label, value in facts),
            "",
            f"Download it: {link}",
            "The link needs your login token (Authorization: Bearer <token>), or run:",
            "",
            f"  mp3mesh download {finished.job_id}",
            "",
            "-- mp3mesh",
            "",
        ]
    )
    rows = "".join(
        f'<tr><th align="left">{html.escape(label)}</th><td>{html.escape(value)}</td></tr>\n'
        for label, value in facts
    )
    rich = (
        "<!DOCTYPE html>\n<html><body>\n"
        "<p>Hello,</p>\n<p>your MP3 is ready.</p>\n"
        f"<table>\n{rows}</table>\n"
        f'<p><a href="{html.escape(link)}">Download {html.escape(facts[1][1])}</a></p>\n'
        "<p>The link needs your login token (<code>Authorization: Bearer &lt;token&gt;</code>),"
        f" or run <code>mp3mesh download {html.escape(finished.job_id)}</code>.</p>\n"
        "<p>-- mp3mesh</p>\n</body></html>\n"
    )
    return plain, rich


def _failed_bodies(finished: jobs_pb2.ConversionFinished, original: str) -> tuple[str, str]:
    reason = failure_reason(finished.failure)
    details = clean_text(finished.failure.message)
    plain = "\n".join(
        [
            "Hello,",
            "",
            f"we could not convert {original} to MP3.",
            "",
            f"Why: {reason}",
            *([f"Details: {details}"] if details else []),
            "",
            f"Job: {finished.job_id}",
            "",
            "-- mp3mesh",
            "",
        ]
    )
    rich = (
        "<!DOCTYPE html>\n<html><body>\n"
        f"<p>Hello,</p>\n<p>we could not convert <b>{html.escape(original)}</b> to MP3.</p>\n"
        f"<p>Why: {html.escape(reason)}</p>\n"
        + (f"<p>Details: {html.escape(details)}</p>\n" if details else "")
        + f"<p>Job: <code>{html.escape(finished.job_id)}</code></p>\n"
        "<p>-- mp3mesh</p>\n</body></html>\n"
    )
    return plain, rich
