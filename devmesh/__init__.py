"""The local runner behind `make up` and `make demo`: the whole mesh on one machine.

It is a developer tool, not a service: it knows every service (that is its job) while the
services know only the contracts and the shared packages.
"""
