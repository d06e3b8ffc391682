#!/usr/bin/env python3
"""Write the consumer's partition state table into docs/core.md from the code.

The table between the ``<!-- states:begin -->`` and ``<!-- states:end -->``
markers is generated from ``kafka_sansio._subscription.TRANSITIONS``, so the
documentation cannot drift from the state machine; ``--check`` fails if it has.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kafka_sansio._subscription import TRANSITIONS, FetchState

DOC = Path(__file__).resolve().parent.parent / "docs" / "core.md"
BEGIN, END = "<!-- states:begin -->", "<!-- states:end -->"


def table() -> str:
    rows = ["| from | input | to |", "| --- | --- | --- |"]
    every = set(FetchState)
    wildcard = sorted(
        {i for (_, i), _ in TRANSITIONS.items() if {s for (s, j) in TRANSITIONS if j == i} == every}
    )
    for event in wildcard:
        targets = {TRANSITIONS[(s, event)] for s in every}
        (target,) = targets
        rows.append(f"| any | `{event}` | {target.name} |")
    for (state, event), target in sorted(
        TRANSITIONS.items(), key=lambda kv: (kv[0][0].name, kv[0][1])
    ):
        if event not in wildcard:
            rows.append(f"| {state.name} | `{event}` | {target.name} |")
    return "\n".join(rows)


def render(text: str) -> str:
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{table()}\n{END}{tail}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if docs/core.md is stale")
    args = parser.parse_args()
    text = DOC.read_text(encoding="utf-8")
    new = render(text)
    if args.check:
        if new != text:
            print("docs/core.md is stale: run scripts/draw_states.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
