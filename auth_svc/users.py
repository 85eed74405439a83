"""Users and login failures in MySQL; schema created idempotently at start."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pymysql

from meshkit.mysql import MySQLPool

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS users (
        id CHAR(32) NOT NULL PRIMARY KEY,
        email VARCHAR(254) NOT NULL,
        password_hash VARCHAR(255) NOT NULL,
        created_at DATETIME(6) NOT NULL,
        updated_at DATETIME(6) NOT NULL,
        UNIQUE KEY users_email (email)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin""",
    """CREATE TABLE IF NOT EXISTS login_failures (
        id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
        email VARCHAR(254) NOT NULL,
        failed_at DATETIME(6) NOT NULL,
        KEY login_failures_email_time (email, failed_at)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin""",
)

DUPLICATE_ENTRY = 1062


class EmailTakenError(Exception):
    """The email is already registered (the unique key said so)."""


@dataclass(frozen=True)
class User:
    user_id: str
    email: str
    password_hash: str


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class UserRepository:
    def __init__(self, pool: MySQLPool) -> None:
        self._pool = pool

    def ensure_schema(self) -> None:
        with self._pool.connection() as conn, conn.cursor() as cursor:
            for statement in SCHEMA:
                cursor.execute(statement)

    def create(self, email: str, password_hash: str) -> User:
        user = User(uuid.uuid4().hex, email, password_hash)
        now = _now()
        try:
            with self._pool.connection() as conn, conn.cursor() as cursor:
                cursor.execute(
                    "INSERT INTO users (id, email, password_hash, created_at, updated_at)"
                    " VALUES (%s, %s, %s, %s, %s)",
                    (user.user_id, email, password_hash, now, now),
                )
        except pymysql.err.IntegrityError as exc:
            if exc.args and exc.args[0] == DUPLICATE_ENTRY:
                raise EmailTakenError(email) from exc
            raise
        return user

    def find_by_email(self, email: str) -> User | None:
        with self._pool.connection() as conn, conn.cursor() as cursor:
            cursor.execute("SELECT id, email, password_hash FROM users WHERE email = %s", (email,))
            row = cursor.fetchone()
        if row is None:
            return None
        return User(row["id"], row["email"], row["password_hash"])

    def replace_hash(self, user_id: str, password_hash: str) -> None:
        with self._pool.connection() as conn, conn.cursor() as cursor:
            cursor.execute(
                "UPDATE users SET password_hash = %s, updated_at = %s WHERE id = %s",
                (password_hash, _now(), user_id),
            )


class LoginFailures:
    """Failed logins per email inside a sliding window, shared by every replica via MySQL."""

    def __init__(self, pool: MySQLPool, *, window_s: int) -> None:
        self._pool = pool
        self._window = timedelta(seconds=window_s)

    def recent(self, email: str) -> int:
        with self._pool.connection() as conn, conn.cursor() as cursor:
            cursor.execute(
                "SELECT COUNT(*) AS n FROM login_failures WHERE email = %s AND failed_at > %s",
                (email, _now() - self._window),
            )
            row = cursor.fetchone()
        return int(row["n"]) if row else 0

    def record(self, email: str) -> None:
        now = _now()
        with self._pool.connection() as conn, conn.cursor() as cursor:
            cursor.execute(
                "INSERT INTO login_failures (email, failed_at) VALUES (%s, %s)", (email, now)
            )
            cursor.execute(
                "DELETE FROM login_failures WHERE email = %s AND failed_at <= %s",
                (email, now - self._window),
            )

    def clear(self, email: str) -> None:
        with self._pool.connection() as conn, conn.cursor() as cursor:
            cursor.execute("DELETE FROM login_failures WHERE email = %s", (email,))
