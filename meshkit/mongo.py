"""MongoDB client construction and readiness checks shared by every service.

Why a helper: all services need the same things from a client — short server-selection and
connect timeouts so a missing MongoDB makes a request fail fast (→ 503) instead of hanging for
pymongo's 30 s default, timezone-aware datetimes so jobs' timestamps are unambiguous UTC, and the
database named by the URI's path. Options written in the URI win over these defaults, so an
operator can still tune them without code changes.
"""

from __future__ import annotations

import logging
from typing import Any

import pymongo
from pymongo.database import Database
from pymongo.errors import PyMongoError
from pymongo.uri_parser import parse_uri

log = logging.getLogger(__name__)

DEFAULT_DATABASE = "mp3mesh"

# Defaults applied unless the URI sets the option itself. socketTimeoutMS bounds one round
# trip; the biggest single reply meshkit asks for is a few MiB of GridFS chunks.
_DEFAULT_OPTIONS: dict[str, Any] = {
    "serverSelectionTimeoutMS": 3000,
    "connectTimeoutMS": 3000,
    "socketTimeoutMS": 30000,
}


def database_name(uri: str) -> str:
    """The database named by the URI's path (`mongodb://host/<name>`), else `mp3mesh`."""
    return parse_uri(uri).get("database") or DEFAULT_DATABASE


def connect(uri: str, *, app_name: str) -> pymongo.MongoClient[dict[str, Any]]:
    """A client with fail-fast timeouts and tz-aware datetimes; it connects lazily.

    `app_name` shows up in server logs and `currentOp`, so operators can tell services apart.
    """
    uri_options = {key.lower() for key in parse_uri(uri).get("options", {})}
    options = {k: v for k, v in _DEFAULT_OPTIONS.items() if k.lower() not in uri_options}
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
        uri, appname=app_name, tz_aware=True, **options
    )
    return client


def default_database(client: pymongo.MongoClient[dict[str, Any]]) -> Database[dict[str, Any]]:
    """The database named in the client's URI, else `mp3mesh`."""
    return client.get_default_database(default=DEFAULT_DATABASE)


def ping(client: pymongo.MongoClient[dict[str, Any]]) -> bool:
    """True when the server answers `ping` within the client's server-selection timeout.

    For readiness probes: never raises, so a health loop can call it blindly.
    """
    try:
        client.admin.command("ping")
    except PyMongoError as exc:
        log.debug("mongo ping failed: %s", exc)
        return False
    return True
