"""`python -m devmesh up` (what `make up` runs) and `python -m devmesh demo`."""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "up"
    if command == "up":
        from devmesh.up import main as up

        return up()
    if command == "demo":
        from devmesh.demo import main as demo

        return demo()
    print("usage: python -m devmesh [up|demo]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
