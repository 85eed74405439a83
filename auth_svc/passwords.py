"""Password rules and argon2id hashing.

The strength rule is deliberately simple and explainable (NIST SP 800-63B style): a
minimum length and not one of the 30 000 most common passwords (zxcvbn's list), instead of
composition rules that push users to predictable patterns.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from zxcvbn.frequency_lists import FREQUENCY_LISTS

MIN_LENGTH = 10
MAX_LENGTH = 1024


@cache
def _common_passwords() -> frozenset[str]:
    return frozenset(word.lower() for word in FREQUENCY_LISTS["passwords"])


def password_problem(password: str, email: str = "") -> str | None:
    """Why this password is refused, in words for the user, or None when it is fine."""
    if len(password) < MIN_LENGTH:
        return f"password must be at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"password must be at most {MAX_LENGTH} characters"
    lowered = password.lower()
    if lowered in _common_passwords():
        return "password is too common; choose one that is harder to guess"
    if email and lowered in {email.lower(), email.split("@", 1)[0].lower()}:
        return "password must not be your email address"
    if len(set(password)) < 3:
        return "password is too repetitive"
    return None


@dataclass(frozen=True)
class HashCheck:
    ok: bool
    new_hash: str | None  # set when the stored hash used old parameters and should be replaced


class PasswordHashing:
    """argon2id hashing with a dummy verification to equalise timing for unknown users."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher(type=Type.ID)
        self._dummy_hash = self._hasher.hash("dummy password never matches anything")

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def check(self, stored_hash: str | None, password: str) -> HashCheck:
        """Verifies; with no stored hash it still spends the same work, then fails."""
        try:
            self._hasher.verify(stored_hash or self._dummy_hash, password)
        except (VerificationError, InvalidHashError):
            return HashCheck(ok=False, new_hash=None)
        if stored_hash is None:
            return HashCheck(ok=False, new_hash=None)
        if self._hasher.check_needs_rehash(stored_hash):
            return HashCheck(ok=True, new_hash=self._hasher.hash(password))
        return HashCheck(ok=True, new_hash=None)
