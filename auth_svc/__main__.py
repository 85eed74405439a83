"""`python -m auth_svc` serves; `python -m auth_svc create-user EMAIL` adds an account."""

from __future__ import annotations

import argparse
import getpass
import os
import sys

import grpc
from mp3mesh.auth.v1 import auth_pb2, auth_pb2_grpc

from auth_svc.config import AuthConfig
from auth_svc.server import serve
from meshkit.cli import run_service


def _read_password() -> str:
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Repeat password: ") != first:
        raise SystemExit("error: the passwords differ")
    return first


def create_user(email: str, target: str) -> int:
    """Registers through the running service, so every rule and the hashing apply."""
    password = _read_password()
    with grpc.insecure_channel(target) as channel:
        stub = auth_pb2_grpc.AuthServiceStub(channel)
        try:
            reply = stub.Register(
                auth_pb2.RegisterRequest(email=email, password=password), timeout=15
            )
        except grpc.RpcError as exc:
            print(f"error: {exc.code().name}: {exc.details()}", file=sys.stderr)
            return 1
    print(f"created user {reply.user_id} <{reply.email}>")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m auth_svc", description=__doc__)
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="run the gRPC service (the default)")
    create = commands.add_parser("create-user", help="create an account (password on stdin)")
    create.add_argument("email")
    create.add_argument(
        "--target",
        default=os.environ.get("AUTH_TARGET", "127.0.0.1:50051"),
        help="auth_svc address (default: $AUTH_TARGET or 127.0.0.1:50051)",
    )
    args = parser.parse_args(argv)
    if args.command == "create-user":
        return create_user(args.email, args.target)
    return run_service("auth_svc", AuthConfig.from_env, serve)


if __name__ == "__main__":
    sys.exit(main())
