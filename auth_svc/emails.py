"""Email normalisation and a sanity check (deliverability is proven by the first mail)."""

from __future__ import annotations

import re

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_EMAIL = re.compile(rf"^[^@\s\"<>(),;:\\\[\]]+@{_LABEL}(?:\.{_LABEL})+$")
MAX_EMAIL_LENGTH = 254


def normalise_email(raw: str) -> str:
    return raw.strip().lower()


def email_problem(email: str) -> str | None:
    """Why this (normalised) email is refused, or None."""
    if not email:
        return "email is required"
    if len(email) > MAX_EMAIL_LENGTH:
        return f"email must be at most {MAX_EMAIL_LENGTH} characters"
    if not _EMAIL.match(email):
        return "email is not a valid address"
    return None
