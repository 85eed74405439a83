"""`make up`'s local set-up against the real MariaDB, and its clear refusals."""

from __future__ import annotations

import secrets
import socket
from pathlib import Path

import pytest

from devmesh.provision import SetupError, provision_mysql, require_free_ports, require_rabbitmq
from devmesh.settings import MeshSettings
from meshkit.mysql import MySQLPool, MySQLTarget
from tests.fixtures.mysql import drop_database
from tests.fixtures.processes import free_port

pytestmark = pytest.mark.integration


def settings(tmp_path: Path, **env: str) -> MeshSettings:
    return MeshSettings.from_env({"MP3MESH_DATA_DIR": str(tmp_path), **env})


def test_mysql_database_and_user_are_created_once_and_kept(tmp_path: Path) -> None:
    name = f"mp3mesh_p_{secrets.token_hex(4)}"
    try:
        first = provision_mysql(settings(tmp_path), database=name, user=name)
        second = provision_mysql(settings(tmp_path), database=name, user=name)
        assert first == second  # the password is kept in the data folder
        assert (tmp_path / "secrets" / "mysql_password").stat().st_mode & 0o777 == 0o600
        assert MySQLPool(MySQLTarget.from_url(first)).ping()
    finally:
        drop_database(name, name)


def test_a_given_mysql_url_is_used_as_is(tmp_path: Path) -> None:
    url = "mysql://someone:secret@db.example:3306/auth"
    assert provision_mysql(settings(tmp_path, MYSQL_URL=url)) == url
    assert not (tmp_path / "secrets").exists()


def test_a_port_in_use_is_named_with_what_to_do(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(SetupError, match=rf"port {port} \(HTTP_PORT .* set HTTP_PORT"):
            require_free_ports(settings(tmp_path, HTTP_PORT=str(port)), mongo=False, smtp=False)


def test_an_unreachable_broker_is_one_clear_sentence() -> None:
    url = f"amqp://guest:secret-pw@127.0.0.1:{free_port()}/%2F"
    with pytest.raises(SetupError) as caught:
        require_rabbitmq(url)
    message = str(caught.value)
    assert "cannot reach RabbitMQ" in message and "rabbitmq-server -detached" in message
    assert "secret-pw" not in message
