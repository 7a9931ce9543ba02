"""``python -m clawdbot_client flush --url URL --spool PATH [--timeout S]``.

Sends what a spool holds (left by a process that died, or written while the server was
down) and prints how many milestones are left; exits 1 when some are. The token comes
from ``CLAWDBOT_TOKEN``, not the command line, which other users can read.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from .client import Client


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clawdbot_client")
    commands = parser.add_subparsers(dest="command", required=True)
    flush = commands.add_parser("flush", help="send a spool's milestones; print how many are left")
    flush.add_argument("--url", required=True, help="the server, e.g. http://127.0.0.1:8000")
    flush.add_argument("--spool", required=True, help="the spool file (the client's spool_path)")
    flush.add_argument("--timeout", type=float, default=60.0, help="seconds (default 60)")
    args = parser.parse_args(argv)
    token = os.environ.get("CLAWDBOT_TOKEN")
    if not token:
        parser.error("set CLAWDBOT_TOKEN to an operator token")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    client = Client(args.url, token, spool_path=args.spool, flush_at_exit=0)
    left = client.close(timeout=args.timeout)
    print(left, flush=True)
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())
