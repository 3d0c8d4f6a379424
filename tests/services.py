"""Real servers for the tests, started on free loopback ports and stopped afterwards: PostgreSQL
(Debian's postgresql) and the mosquitto MQTT broker. .ci/run installs both; without them the tests
that need them are skipped with the reason."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout_s} s")


@contextlib.contextmanager
def serving(app, **options) -> Iterator[int]:
    """An ASGI app served by uvicorn in a thread on a free loopback port (``options``: uvicorn's);
    the port, while it runs."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **options))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "the service did not start"
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def postgres_bin() -> Path | None:
    """The folder of PostgreSQL's server programs (initdb, postgres), or None."""
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(candidate, "initdb").is_file():
            return Path(candidate)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


class Postgres:
    """A throwaway PostgreSQL server (trust authentication, loopback only). As root, it runs as the
    ``postgres`` system user (the server refuses to run as root)."""

    def __init__(self) -> None:
        binaries = postgres_bin()
        if binaries is None:
            raise FileNotFoundError("PostgreSQL's initdb")
        self.folder = Path(tempfile.mkdtemp(prefix="lwcnn-pg-"))
        self.port = free_port()
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres")
            self.prefix = ["runuser", "-u", "postgres", "--"]
        data = self.folder / "data"
        self._binaries, self._data = binaries, data
        initdb = [
            *self.prefix,
            str(binaries / "initdb"),
            "-D",
            str(data),
            "-U",
            "lwcnn",
            "-A",
            "trust",
            "--no-sync",
        ]
        subprocess.run(initdb, check=True, capture_output=True)
        self._command = [*self.prefix, str(binaries / "postgres"), "-D", str(data), "-p", str(self.port),
                         "-h", "127.0.0.1", "-k", str(self.folder), "-F"]  # fmt: skip
        self.process = subprocess.Popen(self._command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port)
        self.url = f"postgresql://lwcnn@127.0.0.1:{self.port}/postgres"
        self._ready()

    def restart(self) -> None:
        """Stop the server and start it again on the same port and data (clients lose their connection)."""
        # "fast" shutdown (sessions ended, as in a restart), through pg_ctl: a signal to runuser stays there
        pg_ctl = [
            *self.prefix,
            str(self._binaries / "pg_ctl"),
            "-D",
            str(self._data),
            "stop",
            "-m",
            "fast",
            "-w",
        ]
        subprocess.run(pg_ctl, check=True, capture_output=True, timeout=60)
        self.process.wait(timeout=30)
        self.process = subprocess.Popen(self._command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port)
        self._ready()

    def _ready(self) -> None:
        import psycopg

        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg.connect(self.url, connect_timeout=2).close()
                return
            except psycopg.OperationalError:  # starting up
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def new_database(self, name: str) -> str:
        """A fresh, empty database; its URL."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
            connection.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://lwcnn@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.folder, ignore_errors=True)


class Mosquitto:
    """A mosquitto broker on a loopback port, with persistence (so that a restart keeps a persistent
    subscriber's session and the messages queued for it); :meth:`stop` and :meth:`start` again."""

    def __init__(self) -> None:
        binary = shutil.which("mosquitto") or (
            "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").is_file() else None
        )
        if binary is None:
            raise FileNotFoundError("mosquitto")
        self.binary = binary
        self.folder = Path(tempfile.mkdtemp(prefix="lwcnn-mqtt-"))
        if os.geteuid() == 0 and _user_exists("mosquitto"):  # the broker drops root to its own user
            shutil.chown(self.folder, "mosquitto")
        self.port = free_port()
        self.config = self.folder / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {self.folder}/\nautosave_interval 1\nlog_type none\n"
        )
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "-c", str(self.config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()  # SIGTERM: the broker saves its sessions
            self.process.wait(timeout=30)
            self.process = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False
