"""The ``kafka-sansio`` command line.

Machine-readable output goes to stdout, progress and errors to stderr.  Exit
codes: 0 success, 1 the operation failed, 2 bad usage.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="kafka-sansio", description="A sans-IO Kafka client core, driven from the shell."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo",
        help="write, consume, seek past the end and show the reset events",
        description=(
            "Runs on the embedded in-memory Kafka model by default (no Java, no network); "
            "--bootstrap points it at a real cluster."
        ),
    )
    demo.add_argument("--bootstrap", metavar="HOST:PORT[,...]", help="a real Kafka cluster")
    demo.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for each step (default 60)"
    )
    args = parser.parse_args(argv)
    if args.command == "demo":
        from ._demo import run

        return run(args.bootstrap, timeout=args.timeout)
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
