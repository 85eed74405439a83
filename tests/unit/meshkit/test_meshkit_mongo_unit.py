"""Client construction: database from the URI, fail-fast defaults, URI options win."""

from __future__ import annotations

import time

from meshkit import mongo
from tests.fixtures.processes import free_port


def test_database_name_comes_from_the_uri_path():
    assert mongo.database_name("mongodb://h:1/jobsdb") == "jobsdb"
    assert mongo.database_name("mongodb://h:1/") == "mp3mesh"
    assert mongo.database_name("mongodb://h:1") == "mp3mesh"
    assert mongo.database_name("mongodb://h:1/other?appname=x") == "other"


def test_connect_sets_fail_fast_timeouts_and_tz_aware_datetimes():
    client = mongo.connect("mongodb://127.0.0.1:1/jobsdb", app_name="gateway")
    try:
        assert client.options.server_selection_timeout == 3.0
        assert client.options.pool_options.connect_timeout == 3.0
        assert client.options.pool_options.socket_timeout == 30.0
        assert client.options.pool_options.metadata["application"]["name"] == "gateway"
        assert client.codec_options.tz_aware is True
        assert mongo.default_database(client).name == "jobsdb"
    finally:
        client.close()


def test_options_in_the_uri_win():
    client = mongo.connect(
        "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=1234&sockettimeoutms=99", app_name="x"
    )
    try:
        assert client.options.server_selection_timeout == 1.234
        assert client.options.pool_options.socket_timeout == 0.099
        assert mongo.default_database(client).name == "mp3mesh"
    finally:
        client.close()


def test_ping_is_false_without_a_server_and_does_not_hang():
    client = mongo.connect(
        f"mongodb://127.0.0.1:{free_port()}/?serverSelectionTimeoutMS=300", app_name="x"
    )
    try:
        started = time.monotonic()
        assert mongo.ping(client) is False
        assert time.monotonic() - started < 3
    finally:
        client.close()
