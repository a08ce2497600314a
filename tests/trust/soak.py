"""The soak: long random histories of the whole lifecycle over several seeds (``make soak``).

Runs :class:`tests.trust.lifecycle.LifecycleMachine` for ``--steps`` rule steps per seed, in
histories of ``--history`` steps each (a fresh sandbox company per history), and prints a table:
steps, backups, kills, restores (in place and into new companies), warehouse builds (killed,
compared with a full build), records compared and invariant violations per seed. A violation
is shrunk by hypothesis to a minimal history, printed with the seed that replays it, and the
command exits 1.

    python -m tests.trust.soak --seeds 5 --steps 400
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from dataclasses import asdict
from pathlib import Path

from hypothesis import HealthCheck, Phase, seed, settings
from hypothesis.stateful import get_state_machine_test

from tests.conftest import build_state
from tests.trust import lifecycle
from tests.trust.lifecycle import Tally, machine_for

COLUMNS = (
    ("seed", "seed"),
    ("steps", "steps"),
    ("histories", "histories"),
    ("backups", "backups"),
    ("kills", "kills"),
    ("restores", "restores"),
    ("reruns", "reruns"),
    ("into", "into_restores"),
    ("into kills", "into_kills"),
    ("builds", "builds"),
    ("build kills", "builds_killed"),
    ("builds compared", "builds_compared"),
    ("conflicts", "conflicts_flagged"),
    ("snapshots checked", "snapshots_checked"),
    ("records compared", "records_compared"),
    ("violations", "violations"),
    ("minutes", "minutes"),
)


def run_seed(
    template: Path, workdir: Path, number: int, steps: int, history: int, *, shrink: bool = False
) -> dict:
    """One seed's histories; returns its row of the table."""
    lifecycle.TALLY = Tally()
    histories = max(1, steps // history)
    # Shrinking replays a failing history hundreds of times, each with a fresh company: the soak
    # reports the first failure with its seed at once, and --shrink replays that seed to the
    # minimal history. Hypothesis's explain phase traces every line run: far too slow here.
    phases = [Phase.generate, Phase.shrink] if shrink else [Phase.generate]
    config = settings(
        max_examples=histories,
        stateful_step_count=history,
        deadline=None,
        database=None,
        print_blob=True,
        phases=phases,
        suppress_health_check=list(HealthCheck),
    )
    started = time.monotonic()
    violations = 0
    with machine_for(template, workdir) as machine:
        test = seed(number)(get_state_machine_test(machine, settings=config))
        try:
            test()
        except Exception:
            violations = 1
            traceback.print_exc()
            print(
                f"replay and shrink: python -m tests.trust.soak --only-seed {number} "
                f"--steps {steps} --history {history} --shrink",
                file=sys.stderr,
            )
    tally = lifecycle.TALLY
    row = {k: v for k, v in asdict(tally).items() if k not in ("rules", "seconds")}
    row.update(
        seed=number,
        histories=histories,
        violations=violations,
        minutes=round((time.monotonic() - started) / 60, 1),
        rules=dict(tally.rules),
    )
    return row


def table(rows: list[dict]) -> str:
    """The rows as a Markdown table, with a total line."""
    total = {key: sum(r[key] for r in rows) for _, key in COLUMNS if key != "seed"}
    total["seed"] = "all"
    total["minutes"] = round(total["minutes"], 1)
    lines = [
        "| " + " | ".join(name for name, _ in COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    lines.extend(
        "| "
        + " | ".join(
            f"{row[key]:,}" if isinstance(row[key], int) else str(row[key]) for _, key in COLUMNS
        )
        + " |"
        for row in [*rows, total]
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the soak and print its table; exit 1 on any invariant violation."""
    parser = argparse.ArgumentParser(prog="python -m tests.trust.soak", description=__doc__)
    parser.add_argument("--seeds", type=int, default=5, help="how many seeds (default 5)")
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--only-seed", type=int, default=None, help="replay one seed")
    parser.add_argument("--steps", type=int, default=400, help="rule steps per seed")
    parser.add_argument("--history", type=int, default=40, help="steps per history")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    parser.add_argument(
        "--shrink", action="store_true", help="shrink a failure to its minimal history (slow)"
    )
    args = parser.parse_args(argv)
    seeds = (
        [args.only_seed]
        if args.only_seed is not None
        else list(range(args.first_seed, args.first_seed + args.seeds))
    )
    rows = []
    with tempfile.TemporaryDirectory(prefix="qbo-soak-") as tmp:
        template = build_state(Path(tmp) / "template.sqlite3", realms=1)
        for number in seeds:
            work = Path(tmp) / f"seed-{number}"
            work.mkdir()
            row = run_seed(template, work, number, args.steps, args.history, shrink=args.shrink)
            rows.append(row)
            print(
                f"seed {number}: {row['steps']} steps, {row['violations']} violations, "
                f"{row['minutes']} min",
                flush=True,
            )
    print()
    print(table(rows))
    rules: dict[str, int] = {}
    for row in rows:
        for name, count in row["rules"].items():
            rules[name] = rules.get(name, 0) + count
    print()
    print("rules run: " + ", ".join(f"{k} {v}" for k, v in sorted(rules.items())))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 1 if any(r["violations"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
