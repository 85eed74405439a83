"""notifier_svc settings, read once from the environment, every problem reported together.

| variable | default | meaning |
|---|---|---|
| `GRPC_PORT` | 50053 | health + reflection port |
| `MONGO_URI` | mongodb://127.0.0.1:27017/mp3mesh | where the `jobs` collection lives |
| `AMQP_URL` | amqp://guest:guest@127.0.0.1:5672/%2F | RabbitMQ; the `mp3` queue is consumed |
| `SMTP_URL` | smtp://127.0.0.1:2525 | see `notifier_svc.smtp_url` for the three forms |
| `SMTP_USERNAME`, `SMTP_PASSWORD` | unset | both or neither; never logged |
| `SMTP_FROM` | mp3mesh <noreply@localhost> | the From header and envelope sender |
| `SMTP_TIMEOUT_S` | 15 | per socket operation of one SMTP conversation |
| `PUBLIC_BASE_URL` | http://127.0.0.1:8080 | base of the download link in the mail |
| `NOTIFIER_CONCURRENCY` | 4 | mails sent at once (and the consumer's prefetch) |

Gmail: `SMTP_URL=smtp+starttls://smtp.gmail.com:587`, `SMTP_USERNAME=you@gmail.com`,
`SMTP_PASSWORD=<an app password>` (Google account → Security → App passwords; the account
password itself is refused), `SMTP_FROM=you@gmail.com` (Gmail rewrites other From addresses).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parseaddr

from meshkit.config import COMMON_ENV_VARS, CommonConfig, EnvReader, read_common
from notifier_svc.smtp_url import SmtpTarget, SmtpUrlError, parse_smtp_url
from observability.tracing import TRACING_ENV_VARS

DEFAULT_PORT = 50053
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

ENV_VARS: tuple[str, ...] = (
    *COMMON_ENV_VARS,
    *TRACING_ENV_VARS,
    "MONGO_URI",
    "AMQP_URL",
    "SMTP_URL",
    "SMTP_USERNAME",
    "SMTP_PASSWORD",
    "SMTP_FROM",
    "SMTP_TIMEOUT_S",
    "PUBLIC_BASE_URL",
    "NOTIFIER_CONCURRENCY",
)


@dataclass(frozen=True)
class NotifierConfig:
    common: CommonConfig
    mongo_uri: str
    amqp_url: str = field(repr=False)  # may carry a broker password
    smtp: SmtpTarget
    smtp_username: str | None
    smtp_password: str | None = field(repr=False)
    smtp_from: str
    smtp_timeout_s: float
    public_base_url: str
    concurrency: int
    environ: Mapping[str, str] = field(repr=False)

    @property
    def envelope_from(self) -> str:
        """The bare address of `smtp_from`, used as the SMTP envelope sender (MAIL FROM)."""
        return parseaddr(self.smtp_from)[1]

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> NotifierConfig:
        env = EnvReader(environ)
        common = read_common(env, default_grpc_port=DEFAULT_PORT)
        mongo_uri = env.url(
            "MONGO_URI", "mongodb://127.0.0.1:27017/mp3mesh", schemes=("mongodb", "mongodb+srv")
        )
        amqp_url = env.url(
            "AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F", schemes=("amqp", "amqps")
        )
        smtp = _read_smtp(env)
        username = env.optional("SMTP_USERNAME")
        password = env.optional("SMTP_PASSWORD")
        if (username is None) != (password is None):
            env.fail("SMTP_USERNAME and SMTP_PASSWORD must be set together (or neither)")
        if username is not None and not smtp.encrypted and not smtp.loopback:
            env.fail(
                "SMTP credentials would cross the network in clear text: use"
                " smtp+starttls:// or smtps:// in SMTP_URL"
            )
        smtp_from = env.text("SMTP_FROM", "mp3mesh <noreply@localhost>")
        if _CONTROL.search(smtp_from) or "@" not in parseaddr(smtp_from)[1]:
            env.fail("SMTP_FROM must be an address like 'mp3mesh <noreply@example.com>'")
        base_url = env.url("PUBLIC_BASE_URL", "http://127.0.0.1:8080", schemes=("http", "https"))
        config = cls(
            common=common,
            mongo_uri=mongo_uri,
            amqp_url=amqp_url,
            smtp=smtp,
            smtp_username=username,
            smtp_password=password,
            smtp_from=smtp_from,
            smtp_timeout_s=env.number("SMTP_TIMEOUT_S", 15.0, minimum=1, maximum=300),
            public_base_url=base_url.rstrip("/"),
            concurrency=env.integer("NOTIFIER_CONCURRENCY", 4, minimum=1, maximum=64),
            environ=dict(environ),
        )
        env.finish("notifier_svc")
        return config


def _read_smtp(env: EnvReader) -> SmtpTarget:
    raw = env.text("SMTP_URL", "smtp://127.0.0.1:2525")
    try:
        return parse_smtp_url(raw)
    except SmtpUrlError as exc:
        env.fail(str(exc))
        return parse_smtp_url("smtp://127.0.0.1:2525")
