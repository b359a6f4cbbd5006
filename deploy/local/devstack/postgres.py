"""PostgreSQL: a throwaway cluster of the Debian binaries, run as the postgres user under root."""

from __future__ import annotations

import os
import pwd
import re
import stat
import subprocess
from collections.abc import Sequence
from pathlib import Path

from .component import Component
from .config import HOST, Config
from .errors import StackError
from .procs import (
    STOP_TIMEOUT_S,
    cmdline,
    ensure_port_free,
    is_alive,
    mkdirs,
    run_checked,
    say,
    wait_dead,
    write_pid,
)

PG_START_TIMEOUT_S = 60
PG_USER = "postgres"
APP_ROLE = "rosterflow"
APP_DATABASE = "rosterflow"
# Idempotent: psql's \gexec runs each generated statement only when the object is missing.
CREATE_APP_ROLE_SQL = """\
SELECT 'CREATE ROLE rosterflow LOGIN SUPERUSER'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'rosterflow') \\gexec
SELECT 'CREATE DATABASE rosterflow OWNER rosterflow'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'rosterflow') \\gexec
"""


def pg_address(cfg: Config) -> str:
    return f"{HOST}:{cfg.pg_port} (postgresql://{APP_ROLE}@{HOST}:{cfg.pg_port}/{APP_DATABASE})"


def pg_version_key(bindir: Path) -> tuple[int, ...]:
    version = bindir.parent.name
    if not re.fullmatch(r"\d+(\.\d+)*", version):
        return (0,)
    return tuple(int(part) for part in version.split("."))


def find_pg_bindir() -> Path | None:
    candidates = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/pg_ctl")]
    return max(candidates, key=pg_version_key) if candidates else None


def install_postgres() -> None:
    if os.geteuid() != 0:
        raise StackError(
            "postgres: no PostgreSQL under /usr/lib/postgresql/*/bin; "
            "install it: sudo apt-get install -y postgresql"
        )
    say(
        "postgres: no PostgreSQL under /usr/lib/postgresql/*/bin; installing the Debian "
        "package now (apt-get update && apt-get install -y postgresql) ..."
    )
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run_checked(["apt-get", "update"], "apt-get update", env=env)
    run_checked(["apt-get", "install", "-y", "postgresql"], "apt-get install postgresql", env=env)


def pg_bindir() -> Path:
    bindir = find_pg_bindir()
    if bindir is None:
        install_postgres()
        bindir = find_pg_bindir()
    if bindir is None:
        raise StackError(
            "postgres: installed package postgresql but found no /usr/lib/postgresql/*/bin/pg_ctl"
        )
    return bindir


def running_as_root() -> bool:
    return os.geteuid() == 0


def as_pg_user(cmd: Sequence[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run server-side tools as the postgres user then."""
    return ["runuser", "-u", PG_USER, "--", *cmd] if running_as_root() else list(cmd)


def pg_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(PG_USER)
    except KeyError:
        raise StackError(
            f"postgres: running as root but there is no '{PG_USER}' system user to run the "
            "server as (apt-get install -y postgresql creates it, or: "
            "useradd --system --home /var/lib/postgresql postgres)"
        ) from None


def first_untraversable(path: Path, user: pwd.struct_passwd) -> Path | None:
    """The first directory on the way to `path` that `user` may not enter (mode bits, no ACLs)."""
    groups = set(os.getgrouplist(user.pw_name, user.pw_gid))
    for directory in [*reversed(path.parents), path]:
        info = directory.stat()
        if info.st_uid == user.pw_uid:
            allowed = bool(info.st_mode & stat.S_IXUSR)
        elif info.st_gid in groups:
            allowed = bool(info.st_mode & stat.S_IXGRP)
        else:
            allowed = bool(info.st_mode & stat.S_IXOTH)
        if not allowed:
            return directory
    return None


def prepare_pg_dirs(cfg: Config) -> None:
    mkdirs(cfg.pg_data, cfg.pg_run, cfg.pg_log.parent)
    if not running_as_root():
        return
    user = pg_user()
    for own_dir in (cfg.local, cfg.pg_dir):  # created by us, maybe under a strict umask
        own_dir.chmod(own_dir.stat().st_mode | stat.S_IXGRP | stat.S_IXOTH)
    blocked = first_untraversable(cfg.pg_dir, user)
    if blocked is not None:
        mode = stat.filemode(blocked.stat().st_mode)
        raise StackError(
            f"postgres: the '{PG_USER}' user cannot enter {blocked} (mode {mode}), so the "
            f"server cannot use {cfg.pg_dir}. Run `chmod o+x {blocked}` or point "
            "ROSTERFLOW_LOCAL_DIR at a directory it can reach."
        )
    for directory in (cfg.pg_data, cfg.pg_run, cfg.pg_log.parent):
        if directory.stat().st_uid != user.pw_uid:
            os.chown(directory, user.pw_uid, user.pw_gid)
    cfg.pg_data.chmod(0o700)


def pg_locale() -> str:
    result = subprocess.run(["locale", "-a"], capture_output=True, text=True, check=False)
    available = {name.lower().replace("-", "") for name in result.stdout.split()}
    return "C.UTF-8" if "c.utf8" in available else "C"


def pg_initdb_once(cfg: Config, bindir: Path) -> None:
    version_file = cfg.pg_data / "PG_VERSION"
    if version_file.exists():
        data_version = version_file.read_text().strip()
        if data_version != bindir.parent.name:
            raise StackError(
                f"postgres: {cfg.pg_data} was created by PostgreSQL {data_version} but the "
                f"binaries are {bindir.parent.name}. It is a throwaway cluster: "
                f"`stack.py down`, delete {cfg.pg_dir}, `stack.py up`."
            )
        return
    say(f"postgres: initdb {cfg.pg_data} (PostgreSQL {bindir.parent.name})")
    initdb = [
        str(bindir / "initdb"),
        "-D", str(cfg.pg_data),
        "--auth=trust",
        f"--username={PG_USER}",
        "-E", "UTF8",
        f"--locale={pg_locale()}",
        "--no-sync",
        "--no-instructions",
    ]  # fmt: skip
    run_checked(as_pg_user(initdb), "initdb")
    with open(cfg.pg_data / "postgresql.conf", "a", encoding="utf-8") as conf:
        conf.write("\n# rosterflow local stack: deploy/local/stack.py writes rosterflow.conf\n")
        conf.write("include_if_exists = 'rosterflow.conf'\n")


def write_pg_settings(cfg: Config) -> None:
    settings = {
        "port": str(cfg.pg_port),
        "listen_addresses": f"'{HOST}'",
        "unix_socket_directories": f"'{cfg.pg_run}'",
        "max_connections": "200",
        # Throwaway cluster: no flushes to disk (a machine crash may lose it). But a
        # commit the server acknowledged must survive the server's own crash, as in
        # production: with synchronous_commit off a stopped server forgets commits
        # whose events were already published, which no service could ever repair.
        "fsync": "off",
        "synchronous_commit": "on",
        "full_page_writes": "off",
    }
    path = cfg.pg_data / "rosterflow.conf"
    path.write_text("".join(f"{key} = {value}\n" for key, value in settings.items()))
    if running_as_root():
        user = pg_user()
        os.chown(path, user.pw_uid, user.pw_gid)


def postmaster_pid(cfg: Config) -> int | None:
    try:
        first = (cfg.pg_data / "postmaster.pid").read_text().splitlines()[0].strip()
    except (FileNotFoundError, IndexError, PermissionError):
        return None
    return int(first) if first.isdigit() else None


def pg_is_ours(cfg: Config, pid: int) -> bool:
    args = cmdline(pid)
    if not args or Path(args[0]).name not in ("postgres", "postmaster"):
        return False
    return str(cfg.pg_data) in args


def pg_probe(cfg: Config) -> str | None:
    bindir = find_pg_bindir()
    if bindir is None:
        return "no PostgreSQL binaries found"
    cmd = [
        str(bindir / "pg_isready"),
        "-q",
        "-h",
        HOST,
        "-p",
        str(cfg.pg_port),
        "-t",
        "2",
        "-U",
        "postgres",
    ]
    code = subprocess.run(cmd, check=False).returncode
    return None if code == 0 else f"pg_isready on {HOST}:{cfg.pg_port} returned {code}"


def pg_ensure_app_role(cfg: Config, bindir: Path) -> None:
    psql = [
        str(bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
        "-h", HOST, "-p", str(cfg.pg_port), "-U", PG_USER, "-d", "postgres", "-f", "-",
    ]  # fmt: skip
    run_checked(
        psql,
        f"creating role/database '{APP_ROLE}'",
        stdin_text=CREATE_APP_ROLE_SQL,
        env=dict(os.environ, PGCONNECT_TIMEOUT="10"),
    )


def pg_start(cfg: Config) -> int:
    bindir = pg_bindir()
    prepare_pg_dirs(cfg)
    pg_initdb_once(cfg, bindir)
    write_pg_settings(cfg)
    adopted = postmaster_pid(cfg)
    if adopted is not None and is_alive(adopted) and pg_is_ours(cfg, adopted):
        say(f"postgres: server for {cfg.pg_data} runs (pid {adopted}) without pid file; adopting")
    else:
        ensure_port_free(cfg.pg_port, "postgres")
        pg_ctl = [
            str(bindir / "pg_ctl"), "-D", str(cfg.pg_data), "-l", str(cfg.pg_log),
            "-w", "-t", str(PG_START_TIMEOUT_S), "start",
        ]  # fmt: skip
        run_checked(as_pg_user(pg_ctl), "pg_ctl start", logs=[cfg.pg_log])
    pid = postmaster_pid(cfg)
    if pid is None or not is_alive(pid):
        raise StackError(
            f"postgres: pg_ctl said it started, but {cfg.pg_data}/postmaster.pid has no live pid",
            [cfg.pg_log],
        )
    write_pid(cfg, "postgres", pid)
    pg_ensure_app_role(cfg, bindir)
    return pid


def pg_stop(cfg: Config, pid: int) -> None:
    bindir = pg_bindir()
    timeout = str(int(STOP_TIMEOUT_S))
    pg_ctl = [str(bindir / "pg_ctl"), "-D", str(cfg.pg_data), "-w", "-t", timeout, "stop"]
    fast = subprocess.run(
        as_pg_user([*pg_ctl, "-m", "fast"]), capture_output=True, text=True, check=False
    )
    if wait_dead(pid, 5.0):
        return
    detail = fast.stdout.strip() or fast.stderr.strip()
    say(f"postgres: fast shutdown did not finish ({detail}); trying immediate shutdown")
    subprocess.run(as_pg_user([*pg_ctl, "-m", "immediate"]), capture_output=True, check=False)
    wait_dead(pid, 10.0)


COMPONENT = Component("postgres", pg_address, pg_is_ours, pg_probe, pg_start, pg_stop)
