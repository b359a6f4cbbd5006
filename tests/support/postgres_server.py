"""A PostgreSQL server of a test's own, to stop and start as a crash would.

The local stack's server is shared by every test running on the machine; a
test that kills PostgreSQL runs one of its own instead: Debian's binaries, a
fresh cluster in a temporary directory, another port. Like the stack's, it
commits synchronously (an acknowledged commit survives the server's crash)
and does not fsync (the machine does not crash in a test).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rosterflow.launcher import free_port

HOST = "127.0.0.1"
# PostgreSQL refuses to run as root; Debian's package creates this user.
PG_USER = "postgres"
APP = "rosterflow"
SETTINGS = {
    "listen_addresses": f"'{HOST}'",
    "max_connections": "100",
    "synchronous_commit": "on",
    "fsync": "off",
    "full_page_writes": "off",
}


def _bindir() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if not found:
        raise RuntimeError("no PostgreSQL under /usr/lib/postgresql (apt-get install postgresql)")
    return max(found, key=lambda p: int(p.parent.parent.name.split(".")[0])).parent


def _as_server_user(cmd: Sequence[str]) -> list[str]:
    return ["runuser", "-u", PG_USER, "--", *cmd] if os.geteuid() == 0 else list(cmd)


@dataclass
class PostgresServer:
    directory: Path
    port: int
    bindir: Path

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def log(self) -> Path:
        return self.directory / "server.log"

    @property
    def dsn(self) -> str:
        return f"postgresql://{APP}@{HOST}:{self.port}/{APP}"

    def _run(self, *args: str) -> None:
        done = subprocess.run(_as_server_user(args), capture_output=True, text=True, check=False)
        if done.returncode != 0:
            tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{args[0]} failed: {done.stdout}{done.stderr}\n{tail}")

    def _pg_ctl(self, *args: str) -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), *args)

    def start(self) -> None:
        self._pg_ctl("-l", str(self.log), "-w", "-t", "60", "start")

    def stop_immediately(self) -> None:
        """What a crash does: no checkpoint, the next start recovers from the WAL."""
        self._pg_ctl("-w", "-t", "60", "stop", "-m", "immediate")

    def stop(self) -> None:
        self._pg_ctl("-w", "-t", "60", "stop", "-m", "fast")

    def psql(self, sql: str, database: str = "postgres") -> None:
        self._run(
            str(self.bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
            "-h", HOST, "-p", str(self.port), "-U", PG_USER, "-d", database, "-c", sql,
        )  # fmt: skip


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """A running server with the application's role and database; removed afterwards."""
    bindir = _bindir()
    # Not under pytest's tmp_path: the server's user must be able to enter it.
    directory = Path(tempfile.mkdtemp(prefix="rosterflow-pg-"))
    directory.chmod(0o755)
    server = PostgresServer(directory, free_port(HOST), bindir)
    server.data.mkdir(mode=0o700)
    if os.geteuid() == 0:
        user = pwd.getpwnam(PG_USER)
        os.chown(directory, user.pw_uid, user.pw_gid)
        os.chown(server.data, user.pw_uid, user.pw_gid)
    try:
        server._run(
            str(bindir / "initdb"), "-D", str(server.data), "--auth=trust",
            f"--username={PG_USER}", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions",
        )  # fmt: skip
        settings = {"port": str(server.port), "unix_socket_directories": f"'{directory}'"}
        with open(server.data / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.writelines(f"{k} = {v}\n" for k, v in {**SETTINGS, **settings}.items())
        server.start()
        try:
            server.psql(f"CREATE ROLE {APP} LOGIN SUPERUSER")
            server.psql(f"CREATE DATABASE {APP} OWNER {APP}")
            yield server
        finally:
            # Stopped already when the test failed in the middle of a crash.
            with contextlib.suppress(RuntimeError):
                server.stop()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
