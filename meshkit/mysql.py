"""A small, thread-safe PyMySQL connection pool with timeouts.

PyMySQL connections are not thread-safe and gRPC handlers run on a thread pool, so each
call borrows a connection. Idle connections are pinged before reuse so a MySQL restart or a
`wait_timeout` disconnect costs one reconnect, not a failed request.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pymysql
import pymysql.cursors

IDLE_PING_AFTER_S = 30.0


@dataclass(frozen=True)
class MySQLTarget:
    host: str
    port: int
    user: str
    password: str
    database: str
    unix_socket: str | None

    @classmethod
    def from_url(cls, url: str) -> MySQLTarget:
        """mysql://user:pass@host:port/db, optionally ?unix_socket=/path."""
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 3306,
            user=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            database=parts.path.lstrip("/") or "auth",
            unix_socket=query.get("unix_socket", [None])[0],
        )

    def redacted(self) -> str:
        return f"mysql://{self.user}:***@{self.host}:{self.port}/{self.database}"


class MySQLPool:
    def __init__(
        self,
        target: MySQLTarget,
        *,
        size: int = 8,
        connect_timeout_s: int = 5,
        io_timeout_s: int = 10,
    ) -> None:
        self._target = target
        self._idle: queue.LifoQueue[tuple[pymysql.connections.Connection[Any], float]] = (
            queue.LifoQueue()
        )
        self._slots = threading.BoundedSemaphore(size)
        self._connect_timeout_s = connect_timeout_s
        self._io_timeout_s = io_timeout_s

    def _connect(self) -> pymysql.connections.Connection[Any]:
        t = self._target
        return pymysql.connect(
            host=t.host,
            port=t.port,
            user=t.user,
            password=t.password,
            database=t.database,
            unix_socket=t.unix_socket,
            connect_timeout=self._connect_timeout_s,
            read_timeout=self._io_timeout_s,
            write_timeout=self._io_timeout_s,
            charset="utf8mb4",
            autocommit=True,
            cursorclass=pymysql.cursors.DictCursor,
        )

    @contextmanager
    def connection(self) -> Iterator[pymysql.connections.Connection[Any]]:
        """Borrows a connection; one that raised is dropped instead of returned."""
        if not self._slots.acquire(timeout=self._connect_timeout_s):
            raise pymysql.err.OperationalError(2013, "no free MySQL connection in time")
        conn: pymysql.connections.Connection[Any] | None = None
        try:
            try:
                conn, last_used = self._idle.get_nowait()
                if time.monotonic() - last_used > IDLE_PING_AFTER_S:
                    conn.ping(reconnect=True)
            except queue.Empty:
                conn = self._connect()
            yield conn
            self._idle.put((conn, time.monotonic()))
        except BaseException:
            if conn is not None:
                conn.close()
            raise
        finally:
            self._slots.release()

    def ping(self) -> bool:
        try:
            with self.connection() as conn, conn.cursor() as cursor:
                cursor.execute("SELECT 1")
            return True
        except pymysql.MySQLError:
            return False

    def close(self) -> None:
        while True:
            try:
                conn, _ = self._idle.get_nowait()
            except queue.Empty:
                return
            conn.close()
