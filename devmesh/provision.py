"""Local infrastructure for `make up`: a MySQL database and user, MongoDB, the mail sink."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pymysql

from devmesh.settings import MeshSettings, kept_secret

LOCAL_DATABASE = "auth"
LOCAL_USER = "mp3mesh"


class SetupError(Exception):
    """Something the local mesh needs is missing; the message says what to do."""


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def port_answers(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _root_connection() -> pymysql.connections.Connection[Any]:
    last: Exception | None = None
    for unix_socket in ("/run/mysqld/mysqld.sock", None):
        try:
            return pymysql.connect(
                user="root",
                password="",
                host="127.0.0.1",
                port=3306,
                unix_socket=unix_socket,
                autocommit=True,
                connect_timeout=5,
            )
        except pymysql.MySQLError as exc:
            last = exc
    raise SetupError(
        "cannot reach MySQL/MariaDB as root to create the local database "
        f"({last}); start MariaDB or set MYSQL_URL to an existing database"
    )


def provision_mysql(
    settings: MeshSettings, *, database: str = LOCAL_DATABASE, user: str = LOCAL_USER
) -> str:
    """Creates the database and its user (idempotent) and returns MYSQL_URL.

    The user's password is generated once and kept in the data folder, so a restart (or a
    second `make up` on the same data) finds the same credentials.
    """
    if settings.mysql_url:
        return settings.mysql_url
    password = kept_secret(settings.data_dir / "secrets" / "mysql_password")
    with _root_connection() as conn, conn.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE IF NOT EXISTS `{database}` CHARACTER SET utf8mb4")
        for host in ("localhost", "127.0.0.1", "::1"):
            cursor.execute(
                f"CREATE USER IF NOT EXISTS '{user}'@'{host}' IDENTIFIED BY %s", (password,)
            )
            cursor.execute(f"ALTER USER '{user}'@'{host}' IDENTIFIED BY %s", (password,))
            cursor.execute(f"GRANT ALL ON `{database}`.* TO '{user}'@'{host}'")
    return f"mysql://{user}:{password}@127.0.0.1:3306/{database}"


def require_free_ports(settings: MeshSettings, *, mongo: bool, smtp: bool) -> None:
    wanted = {
        "HTTP_PORT (gateway REST)": settings.ports.http,
        "GATEWAY_GRPC_PORT": settings.ports.gateway_grpc,
        "AUTH_GRPC_PORT": settings.ports.auth,
        "CONVERTER_GRPC_PORT": settings.ports.converter,
        "NOTIFIER_GRPC_PORT": settings.ports.notifier,
    }
    if mongo:
        wanted["MONGO_PORT (embedded MongoDB)"] = settings.ports.mongo
    if smtp:
        wanted["SMTP_PORT (local mail sink)"] = settings.ports.smtp
    for name, port in wanted.items():
        if not port_is_free(port):
            raise SetupError(
                f"port {port} ({name}) is already in use: stop what uses it (is a mesh "
                f"already running? see `ss -ltnp sport = :{port}`) or set {name.split()[0]}"
            )


def require_rabbitmq(amqp_url: str) -> None:
    import pika

    try:
        pika.BlockingConnection(
            pika.URLParameters(
                amqp_url
                + ("&" if "?" in amqp_url else "?")
                + "connection_attempts=1&socket_timeout=3"
            )
        ).close()
    except Exception as exc:  # pika raises many unrelated types
        raise SetupError(
            f"cannot reach RabbitMQ at {_redact(amqp_url)} ({type(exc).__name__}): "
            "start it (`rabbitmq-server -detached`) or set AMQP_URL"
        ) from None


def _redact(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url


def data_folders(settings: MeshSettings) -> list[Path]:
    # not the Maildir: the sink creates it with its cur/new/tmp folders
    folders = [settings.data_dir, settings.log_dir, settings.trace_file.parent]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    return folders
