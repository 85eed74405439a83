"""`SMTP_URL` parsing: one URL says where the mail server is and how to secure the link.

Three forms, chosen so the scheme alone tells how TLS is used (no query flags to forget):

* `smtp://host[:port]` — plain SMTP (default port 25). For the local sink and internal relays.
* `smtp+starttls://host[:port]` — plain connect, then STARTTLS before anything else is said
  (default port 587). Gmail: `smtp+starttls://smtp.gmail.com:587` with an app password.
* `smtps://host[:port]` — TLS from the first byte, "implicit TLS" (default port 465).

Credentials are not part of the URL: they come from `SMTP_USERNAME` / `SMTP_PASSWORD`, so the
URL can be logged and shown in configuration dumps without leaking a secret.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit


class SmtpUrlError(ValueError):
    """SMTP_URL is not one of the three accepted forms; the message says what to write."""


class Security(enum.Enum):
    """How the connection to the SMTP server is protected."""

    PLAIN = "plain"
    STARTTLS = "starttls"
    IMPLICIT_TLS = "implicit-tls"


_SCHEMES: dict[str, tuple[Security, int]] = {
    "smtp": (Security.PLAIN, 25),
    "smtp+starttls": (Security.STARTTLS, 587),
    "smtps": (Security.IMPLICIT_TLS, 465),
}
SCHEMES: tuple[str, ...] = tuple(_SCHEMES)


@dataclass(frozen=True)
class SmtpTarget:
    """Where to connect and how; safe to log (it never holds credentials)."""

    host: str
    port: int
    security: Security

    @property
    def encrypted(self) -> bool:
        return self.security is not Security.PLAIN

    @property
    def loopback(self) -> bool:
        """True for localhost/127.x/::1: plain SMTP with a password is acceptable there."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def __str__(self) -> str:
        scheme = next(name for name, (sec, _) in _SCHEMES.items() if sec is self.security)
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"


def parse_smtp_url(url: str) -> SmtpTarget:
    """The SmtpTarget an `SMTP_URL` names; raises SmtpUrlError with a fix-it message."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise SmtpUrlError(
            f"SMTP_URL scheme must be one of {', '.join(s + '://' for s in SCHEMES)}"
            f" (got {parts.scheme or 'none'!r})"
        )
    security, default_port = _SCHEMES[scheme]
    if parts.username is not None or parts.password is not None:
        raise SmtpUrlError(
            "SMTP_URL must not contain credentials: set SMTP_USERNAME and SMTP_PASSWORD"
        )
    if parts.query or parts.fragment or parts.path not in ("", "/"):
        raise SmtpUrlError(
            "SMTP_URL takes no path or options: use smtp+starttls://host:587 for STARTTLS"
            " and smtps://host:465 for implicit TLS"
        )
    host = parts.hostname
    if not host:
        raise SmtpUrlError("SMTP_URL needs a host, e.g. smtp://127.0.0.1:2525")
    try:
        port = parts.port
    except ValueError as exc:
        raise SmtpUrlError(f"SMTP_URL has an invalid port: {exc}") from None
    if port == 0:
        raise SmtpUrlError("SMTP_URL port must be between 1 and 65535")
    return SmtpTarget(host=host, port=port or default_port, security=security)
