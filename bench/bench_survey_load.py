"""Load test of the public survey page (/s/<token>/): locust against gunicorn, loopback only.

    DATABASE_URL=postgres://…/salesperf_feedback REDIS_URL=redis://…/8 \\
        .venv/bin/python bench/bench_survey_load.py [--seconds 30] [--users 40]
        [--workers 4] [--tokens 20000] [--port 8765] [--keep]

Target (DESIGN.md): at least 300 requests/s with zero errors.

What it does, on the database of DATABASE_URL (migrated):

1. prepares ``--tokens`` fresh invitations, sent and valid, for a bench rep and a
   few bench customers (``@survey-bench.example``); their tokens are written to a
   file, only the hashes to the database, as the app does;
2. writes a settings module in a temporary folder that imports the project's and
   raises SURVEY_RATE_LIMIT (one IP sends everything here; the counter is still
   incremented on every request, so its cost is measured), and collects the
   static files for it (DEBUG off needs their manifest);
3. starts gunicorn on 127.0.0.1 only (``--workers`` sync workers, DEBUG off, a
   throw-away SECRET_KEY, ALLOWED_HOSTS=127.0.0.1);
4. runs locust headless for ``--seconds``: each simulated customer takes a fresh
   token, opens the survey (GET, must show the form) and answers it (POST, must
   be accepted: 303); a mix of one GET per POST;
5. prints requests/s, failures and latencies, checks in the database that every
   accepted POST stored exactly one answer, then stops gunicorn and deletes the
   bench rows (unless ``--keep``).

This file is also the locustfile: locust imports it (then ``__name__`` is not
"__main__") and finds the ``SurveyCustomer`` user class.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.request
from collections import Counter, deque
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
BENCH_DOMAIN = "survey-bench.example"
SCORES = [(5, 10), (5, 9), (4, 9), (4, 8), (5, 10), (3, 7), (4, 10), (2, 5)]


# --- The locust side ------------------------------------------------------------------------

if __name__ != "__main__":
    from locust import FastHttpUser, constant, task

    TOKENS: deque[str] = deque(Path(os.environ["BENCH_TOKEN_FILE"]).read_text().split())
    FORM_HEADERS = {"Content-Type": "application/x-www-form-urlencoded"}

    class SurveyCustomer(FastHttpUser):
        """A customer opening the emailed link and answering, then the next customer."""

        wait_time = constant(0)

        @task
        def answer_a_survey(self) -> None:
            if not TOKENS:
                self.environment.runner.quit()
                return
            token = TOKENS.popleft()
            path = f"/s/{token}/"
            with self.client.get(path, name="GET /s/[token]/", catch_response=True) as response:
                if response.status_code != 200 or 'name="csat"' not in (response.text or ""):
                    response.failure(f"GET: status {response.status_code}, no form")
            csat, nps = SCORES[len(TOKENS) % len(SCORES)]
            body = urlencode({"csat": csat, "nps": nps, "free_text": "Load test."})
            with self.client.post(
                path,
                data=body,
                headers=FORM_HEADERS,
                name="POST /s/[token]/",
                allow_redirects=False,
                catch_response=True,
            ) as response:
                if response.status_code == 303:
                    response.success()
                else:
                    response.failure(f"POST: status {response.status_code}")


# --- The driver -------------------------------------------------------------------------------


def django_setup() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "salesperf.settings")
    import django

    django.setup()


def check_migrated() -> None:
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    if executor.migration_plan(executor.loader.graph.leaf_nodes()):
        sys.exit(
            "The database is not migrated: run `manage.py migrate` with the same DATABASE_URL."
        )


def prepare_invitations(count: int, token_file: Path) -> None:
    """``count`` sent, valid invitations; their tokens in ``token_file``, hashes in the DB."""
    from django.utils import timezone

    from accounts.models import Role, User
    from feedback import conf, services
    from feedback.models import InvitationReason, SurveyInvitation, SurveyToken
    from leads.models import Customer

    now = timezone.now()
    rep, _ = User.objects.get_or_create(
        email=f"rep@{BENCH_DOMAIN}", defaults={"display_name": "Bench Rep", "role": Role.REP}
    )
    customers = [
        Customer.objects.get_or_create(
            email=f"customer{i}@{BENCH_DOMAIN}",
            defaults={"name": f"Bench customer {i}", "owner": rep, "language": "en"},
        )[0]
        for i in range(20)
    ]
    template = services.survey_template_default()
    invitations = SurveyInvitation.objects.bulk_create(
        [
            SurveyInvitation(
                customer=customers[i % len(customers)],
                rep=rep,
                template=template,
                reason=InvitationReason.ON_DEMAND,
                email=customers[i % len(customers)].email,
                language="en",
                created_at=now,
                send_after=now,
                sent_at=now,
                expires_at=now + conf.link_validity(),
            )
            for i in range(count)
        ],
        batch_size=5000,
    )
    tokens = [services.token_new() for _ in invitations]
    SurveyToken.objects.bulk_create(
        [
            SurveyToken(
                invitation=invitation, token_hash=services.token_hash(token), kind="invitation"
            )
            for invitation, token in zip(invitations, tokens, strict=True)
        ],
        batch_size=5000,
    )
    token_file.write_text("\n".join(tokens))


def cleanup() -> None:
    from accounts.models import User
    from feedback.models import FollowUpCase, SurveyAnswer, SurveyInvitation
    from leads.models import Customer

    bench_customers = Customer.objects.filter(email__endswith=f"@{BENCH_DOMAIN}")
    FollowUpCase.objects.filter(customer__in=bench_customers).delete()
    SurveyAnswer.objects.filter(customer__in=bench_customers).delete()
    SurveyInvitation.objects.filter(customer__in=bench_customers).delete()
    bench_customers.delete()
    User.objects.filter(email=f"rep@{BENCH_DOMAIN}").delete()


def purge_queued_notifications() -> None:
    """Answers that open a case queue a "case opened" email; no worker runs here."""
    from salesperf.celery import app

    try:
        app.control.purge()
    except Exception as error:  # a leftover queue entry is harmless
        print(f"  (could not purge the queued case emails: {error})")


def write_settings(folder: Path) -> None:
    (folder / "bench_survey_settings.py").write_text(
        textwrap.dedent(
            f"""
            from salesperf.settings import *  # noqa: F403

            # One IP address (127.0.0.1) sends the whole load: the limit is raised,
            # the counting (Redis INCR per request) still happens and is measured.
            SURVEY_RATE_LIMIT = (10**9, 60)
            STATIC_ROOT = {str(folder / "static")!r}
            # The manifest without compressing every file: the page only looks names up.
            STORAGES = {{
                **STORAGES,  # noqa: F405
                "staticfiles": {{
                    "BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"
                }},
            }}
            """
        )
    )


def server_env(folder: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench_survey_settings",
        "PYTHONPATH": f"{folder}{os.pathsep}{ROOT}",
        "DEBUG": "false",
        "SECRET_KEY": "bench-only-secret-key-" + "x" * 40,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "SALESPERF_SKIP_DOTENV": "1",
    }


def wait_until_up(base: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{base}/s/not-a-token/", timeout=2)  # noqa: S310 - loopback
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit("gunicorn did not start")


@dataclass
class Figures:
    name: str
    requests: int
    failures: int
    seconds: float
    times: dict[int, int]  # response time (ms, rounded as locust does) -> count

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, share: float) -> int:
        wanted, seen = share * sum(self.times.values()), 0
        for milliseconds in sorted(self.times):
            seen += self.times[milliseconds]
            if seen >= wanted:
                return milliseconds
        return 0


def read_stats(path: Path) -> list[Figures]:
    """Locust's final statistics (``--json-file``), per request kind and in all."""
    entries = json.loads(path.read_text())
    rows = []
    for entry in entries:
        times = {int(float(ms)): count for ms, count in entry["response_times"].items()}
        seconds = entry["last_request_timestamp"] - entry["start_time"]
        rows.append(
            Figures(entry["name"], entry["num_requests"], entry["num_failures"], seconds, times)
        )
    merged: Counter[int] = Counter()
    for row in rows:
        merged.update(row.times)
    seconds = max(e["last_request_timestamp"] for e in entries) - min(
        e["start_time"] for e in entries
    )
    total = Figures(
        "all requests",
        sum(row.requests for row in rows),
        sum(row.failures for row in rows),
        seconds,
        dict(merged),
    )
    return [*rows, total]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--users", type=int, default=40)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=20_000)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--keep", action="store_true", help="keep the bench rows afterwards")
    args = parser.parse_args()
    if not 2 <= args.workers <= 4:
        parser.error("--workers: 2 to 4")

    django_setup()
    check_migrated()
    from feedback.models import SurveyAnswer

    with tempfile.TemporaryDirectory(prefix="survey-bench-") as tmp:
        folder = Path(tmp)
        token_file = folder / "tokens.txt"
        print(f"Preparing {args.tokens:,} fresh invitations…")
        started = time.monotonic()
        cleanup()
        prepare_invitations(args.tokens, token_file)
        print(f"  done in {time.monotonic() - started:.1f} s")

        write_settings(folder)
        env = server_env(folder)
        print("Collecting static files for DEBUG off…")
        subprocess.run(
            [str(BIN / "python"), "manage.py", "collectstatic", "--no-input", "-v", "0"],
            cwd=ROOT,
            env=env,
            check=True,
        )

        base = f"http://127.0.0.1:{args.port}"
        print(f"Starting gunicorn ({args.workers} workers) on {base}…")
        server = subprocess.Popen(
            [
                str(BIN / "gunicorn"),
                "salesperf.wsgi:application",
                "--bind",
                f"127.0.0.1:{args.port}",
                "--workers",
                str(args.workers),
                "--log-level",
                "warning",
                "--backlog",
                "2048",
            ],
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )
        try:
            wait_until_up(base)
            answers_before = SurveyAnswer.objects.count()
            stats = folder / "stats"  # locust adds ".json"
            print(f"Running locust: {args.users} users for {args.seconds} s…")
            subprocess.run(
                [
                    str(BIN / "locust"),
                    "-f",
                    __file__,
                    "--headless",
                    "--users",
                    str(args.users),
                    "--spawn-rate",
                    str(args.users),
                    "--run-time",
                    f"{args.seconds}s",
                    "--host",
                    base,
                    "--json-file",
                    str(stats),
                    "--only-summary",
                    "--loglevel",
                    "WARNING",
                    "--exit-code-on-error",
                    "0",
                ],
                cwd=ROOT,
                env={**os.environ, "BENCH_TOKEN_FILE": str(token_file)},
                check=True,
            )
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)

        rows = read_stats(stats.with_suffix(".json"))
        print("\nResults (locust):")
        header = ("request", "count", "failures", "req/s", "median ms", "p95 ms")
        print("  {:<18} {:>8} {:>9} {:>8} {:>10} {:>8}".format(*header))
        for row in rows:
            print(
                f"  {row.name:<18} {row.requests:>8,} {row.failures:>9} {row.rate:>8.1f} "
                f"{row.percentile(0.5):>10} {row.percentile(0.95):>8}"
            )
        total = rows[-1]
        posts = next(row for row in rows if row.name == "POST /s/[token]/")
        stored = SurveyAnswer.objects.count() - answers_before
        accepted = posts.requests - posts.failures
        # Requests still in flight when locust stops are answered by the server but not
        # counted by locust: at most one per simulated customer.
        consistent = accepted <= stored <= accepted + args.users
        print(
            f"\n  answers stored: {stored:,} for {accepted:,} accepted POSTs "
            f"(+ at most {args.users} in flight at the stop): "
            f"{'consistent' if consistent else 'INCONSISTENT'}"
        )
        verdict = "OK" if total.rate >= 300 and total.failures == 0 and consistent else "BELOW"
        print(
            f"  {total.rate:.1f} requests/s, {total.failures} errors: {verdict} "
            "(target: 300 requests/s or more, 0 errors)"
        )

    purge_queued_notifications()
    if not args.keep:
        cleanup()


if __name__ == "__main__":
    main()
