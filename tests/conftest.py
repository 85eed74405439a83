"""Shared fixtures: real MariaDB, RabbitMQ, MongoDB-wire (nx-27017) and SMTP servers."""

pytest_plugins = [
    "tests.fixtures.mysql",
    "tests.fixtures.mongo",
    "tests.fixtures.rabbit",
    "tests.fixtures.smtp",
]
