#!/usr/bin/env python3
"""Local development stack for rosterflow: Kafka (single KRaft node), PostgreSQL, SMTP sink.

    python3 deploy/local/stack.py up|down|status [--only kafka,postgres,smtp]

Standard library only (runs with the system python3 before any venv exists);
the SMTP sink itself runs with <repo>/.venv/bin/python (create it with `uv sync`).

Everything lives under <repo>/.local/ (override with ROSTERFLOW_LOCAL_DIR):
    kafka/{libs,data,logs}  postgres/{data,run,log}  mail/  objects/  logs/  pids/<name>.pid

Ports (override with env):
    ROSTERFLOW_LOCAL_KAFKA_PORT  19092  (KRaft controller listens on this port + 1)
    ROSTERFLOW_LOCAL_PG_PORT     55432
    ROSTERFLOW_LOCAL_SMTP_PORT   2525

`up` leaves running components alone, `down` only signals pids recorded in the
pid files (after checking /proc/<pid>/cmdline), `status` exits 0 when all
selected components run and answer, 3 otherwise. Any failure exits 1.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
DEPLOY_DIR = Path(__file__).resolve().parent
REPO_ROOT = DEPLOY_DIR.parents[1]
KAFKA_POM = DEPLOY_DIR / "kafka" / "pom.xml"
KAFKA_LOG4J = DEPLOY_DIR / "kafka" / "log4j2.properties"
SMTP_SINK = DEPLOY_DIR / "smtp_sink.py"

ALL_COMPONENTS = ("postgres", "kafka", "smtp")
KAFKA_READY_TIMEOUT_S = 90.0
SMTP_READY_TIMEOUT_S = 20.0
PG_START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 20.0
LOG_TAIL_LINES = 30
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


class StackError(Exception):
    """A failure explained for the engineer running the script; `logs` are tailed after it."""

    def __init__(self, message: str, logs: Sequence[Path] = ()) -> None:
        super().__init__(message)
        self.logs = list(logs)


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class Config:
    local: Path
    kafka_port: int
    pg_port: int
    smtp_port: int

    @property
    def controller_port(self) -> int:
        return self.kafka_port + 1

    @property
    def pids(self) -> Path:
        return self.local / "pids"

    @property
    def kafka_dir(self) -> Path:
        return self.local / "kafka"

    @property
    def kafka_libs(self) -> Path:
        return self.kafka_dir / "libs"

    @property
    def kafka_data(self) -> Path:
        return self.kafka_dir / "data"

    @property
    def kafka_logs(self) -> Path:
        return self.kafka_dir / "logs"

    @property
    def kafka_properties(self) -> Path:
        return self.kafka_dir / "server.properties"

    @property
    def pg_dir(self) -> Path:
        return self.local / "postgres"

    @property
    def pg_data(self) -> Path:
        return self.pg_dir / "data"

    @property
    def pg_run(self) -> Path:
        return self.pg_dir / "run"

    @property
    def pg_log(self) -> Path:
        return self.pg_dir / "log" / "postgres.log"

    @property
    def mailbox(self) -> Path:
        return self.local / "mail"

    @property
    def smtp_log(self) -> Path:
        return self.local / "logs" / "smtp_sink.log"

    def pid_file(self, name: str) -> Path:
        return self.pids / f"{name}.pid"


def env_port(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= 65534:
        raise StackError(f"{name}={raw!r} is not a valid port number (1-65534)")
    return int(raw)


def load_config() -> Config:
    local = Path(os.environ.get("ROSTERFLOW_LOCAL_DIR") or REPO_ROOT / ".local").resolve()
    return Config(
        local=local,
        kafka_port=env_port("ROSTERFLOW_LOCAL_KAFKA_PORT", 19092),
        pg_port=env_port("ROSTERFLOW_LOCAL_PG_PORT", 55432),
        smtp_port=env_port("ROSTERFLOW_LOCAL_SMTP_PORT", 2525),
    )


# --------------------------------------------------------------------------- generic helpers


def say(message: str) -> None:
    print(message, flush=True)


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return "(file does not exist)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty)"


def require_command(name: str, hint: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise StackError(f"`{name}` is not on PATH. {hint}")
    return found


def run_checked(
    cmd: Sequence[str],
    what: str,
    logs: Sequence[Path] = (),
    *,
    cwd: Path | None = None,
    stdin_text: str | None = None,
    env: dict[str, str] | None = None,
) -> str:
    """Run a short command, return its combined output, raise StackError if it fails."""
    result = subprocess.run(
        list(cmd),
        input=stdin_text,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
        cwd=cwd,
        env=env,
    )
    output = result.stdout or ""
    if result.returncode != 0:
        raise StackError(
            f"{what} failed (exit {result.returncode}): {' '.join(cmd)}\n{output.rstrip()}", logs
        )
    return output


def mkdirs(*paths: Path) -> None:
    for path in paths:
        path.mkdir(parents=True, exist_ok=True)


def port_accepts(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


def ensure_port_free(port: int, component: str) -> None:
    if port_accepts(port):
        raise StackError(
            f"{component}: {HOST}:{port} is already in use by a process this stack did not start "
            f"(see `ss -ltnp 'sport = :{port}'`). Stop it or choose another port "
            "via the ROSTERFLOW_LOCAL_*_PORT env overrides."
        )


# --------------------------------------------------------------------------- pids and processes


def read_pid(cfg: Config, name: str) -> int | None:
    try:
        text = cfg.pid_file(name).read_text().strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None


def write_pid(cfg: Config, name: str, pid: int) -> None:
    mkdirs(cfg.pids)
    cfg.pid_file(name).write_text(f"{pid}\n")


def remove_pid(cfg: Config, name: str) -> None:
    cfg.pid_file(name).unlink(missing_ok=True)


def is_alive(pid: int) -> bool:
    """True if the pid exists and is not a zombie."""
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = stat_line.rsplit(")", 1)[-1].split()[0]
    return state not in ("Z", "X")


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def spawn_detached(cmd: Sequence[str], log_path: Path, cwd: Path) -> subprocess.Popen[bytes]:
    mkdirs(log_path.parent)
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            list(cmd),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_ready(
    name: str,
    proc: subprocess.Popen[bytes],
    probe: Callable[[], str | None],
    timeout: float,
    logs: Sequence[Path],
) -> None:
    """Poll `probe` (None = ready, else what is missing) until ready, death or timeout."""
    deadline = time.monotonic() + timeout
    missing = "not probed yet"
    while time.monotonic() < deadline:
        code = proc.poll()
        if code is not None:
            raise StackError(f"{name}: process {proc.pid} exited with code {code} on startup", logs)
        result = probe()
        if result is None:
            return
        missing = result
        time.sleep(0.25)
    abandon_startup(proc)
    raise StackError(
        f"{name}: not ready after {timeout:.0f} s: {missing} (stopped the half-started process)",
        logs,
    )


def abandon_startup(proc: subprocess.Popen[bytes]) -> None:
    """Stop a process this run just spawned (it is our child, so no pid check is needed)."""
    proc.terminate()
    try:
        proc.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def wait_dead(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_alive(pid):
            return True
        time.sleep(0.2)
    return not is_alive(pid)


def terminate_pid(name: str, pid: int) -> None:
    """SIGTERM, wait up to STOP_TIMEOUT_S, then SIGKILL. Caller has verified the pid is ours."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    if wait_dead(pid, STOP_TIMEOUT_S):
        return
    say(f"{name}: pid {pid} ignored SIGTERM for {STOP_TIMEOUT_S:.0f} s, sending SIGKILL")
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    wait_dead(pid, 5.0)


# --------------------------------------------------------------------------- components


@dataclass(frozen=True)
class Component:
    name: str
    address: Callable[[Config], str]
    is_ours: Callable[[Config, int], bool]
    probe: Callable[[Config], str | None]
    start: Callable[[Config], int]
    stop: Callable[[Config, int], None]


def live_pid(cfg: Config, comp: Component) -> int | None:
    """The pid from the pid file if it is alive and really is this stack's component."""
    pid = read_pid(cfg, comp.name)
    if pid is None or not is_alive(pid) or not comp.is_ours(cfg, pid):
        return None
    return pid


# ----- Kafka


def kafka_address(cfg: Config) -> str:
    return f"{HOST}:{cfg.kafka_port} (controller {HOST}:{cfg.controller_port})"


def kafka_is_ours(cfg: Config, pid: int) -> bool:
    args = cmdline(pid)
    return "kafka.Kafka" in args and str(cfg.kafka_properties) in args


def kafka_api_versions(port: int, timeout: float = 2.0) -> str | None:
    """Send a Kafka ApiVersions v0 request; None if the broker answers with error_code 0."""
    correlation_id = 0x5266
    client_id = b"rosterflow-stack"
    request = struct.pack(">hhih", 18, 0, correlation_id, len(client_id)) + client_id
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as sock:
            sock.sendall(struct.pack(">i", len(request)) + request)
            (size,) = struct.unpack(">i", recv_exact(sock, 4))
            body = recv_exact(sock, size)
    except OSError as exc:
        return f"ApiVersions request to {HOST}:{port} failed ({exc})"
    if len(body) < 6:
        return f"ApiVersions answer too short ({len(body)} bytes)"
    got_id, error_code = struct.unpack(">ih", body[:6])
    if got_id != correlation_id:
        return f"ApiVersions answer had correlation id {got_id}, expected {correlation_id}"
    if error_code != 0:
        return f"ApiVersions answered error_code {error_code}"
    return None


def recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("connection closed by the broker")
        chunks += chunk
    return bytes(chunks)


def kafka_probe(cfg: Config) -> str | None:
    if not port_accepts(cfg.kafka_port):
        return f"port {HOST}:{cfg.kafka_port} does not accept connections"
    return kafka_api_versions(cfg.kafka_port)


def pom_digest() -> str:
    return hashlib.sha256(KAFKA_POM.read_bytes()).hexdigest()


def kafka_libs_stamp(cfg: Config) -> Path:
    return cfg.kafka_libs / ".pom.sha256"


def kafka_libs_current(cfg: Config) -> bool:
    try:
        return kafka_libs_stamp(cfg).read_text().strip() == pom_digest()
    except FileNotFoundError:
        return False


def resolve_kafka_libs(cfg: Config) -> None:
    """Copy Kafka's jars into .local/kafka/libs with Maven unless they match the pom already."""
    if kafka_libs_current(cfg):
        return
    mvn = require_command("mvn", "Install Maven (apt-get install -y maven) to fetch Kafka's jars.")
    staging = cfg.kafka_dir / "libs.partial"
    shutil.rmtree(staging, ignore_errors=True)
    say(f"kafka: resolving jars from {KAFKA_POM} with Maven (cached in ~/.m2) ...")
    started = time.monotonic()
    run_checked(
        [
            mvn,
            "-q",
            "-B",
            "-Dstyle.color=never",
            "-f",
            str(KAFKA_POM),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={staging}",
        ],
        "Maven jar resolution (is Maven Central reachable? is ~/.m2 writable?)",
    )
    jars = list(staging.glob("*.jar"))
    if not any(jar.name.startswith("kafka_2.13-") for jar in jars):
        raise StackError(f"kafka: Maven finished but {staging} has no kafka_2.13 jar")
    (staging / ".pom.sha256").write_text(pom_digest() + "\n")
    shutil.rmtree(cfg.kafka_libs, ignore_errors=True)
    staging.rename(cfg.kafka_libs)
    say(f"kafka: {len(jars)} jars resolved in {time.monotonic() - started:.1f} s")


def write_kafka_properties(cfg: Config) -> None:
    # Static quorum (controller.quorum.voters) rather than a KIP-853 dynamic quorum
    # formatted with --standalone: the voter endpoint is then read from this file on
    # every start, so changing ROSTERFLOW_LOCAL_KAFKA_PORT works on existing storage.
    properties = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{HOST}:{cfg.controller_port}",
        "listeners": f"PLAINTEXT://{HOST}:{cfg.kafka_port},CONTROLLER://{HOST}:{cfg.controller_port}",
        "advertised.listeners": f"PLAINTEXT://{HOST}:{cfg.kafka_port}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(cfg.kafka_data),
        "num.partitions": "4",
        "auto.create.topics.enable": "false",
        "offsets.topic.replication.factor": "1",
        # A fresh broker creates __consumer_offsets on the first group join;
        # 50 partitions (the default) cost seconds on this machine for nothing.
        "offsets.topic.num.partitions": "4",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
    }
    lines = ["# Generated by deploy/local/stack.py on every start; edit the script, not this file."]
    lines += [f"{key}={value}" for key, value in properties.items()]
    cfg.kafka_properties.write_text("\n".join(lines) + "\n")


def kafka_java_command(cfg: Config, main_class: str, log_file: str) -> list[str]:
    java = require_command("java", "Install Java 17+ (apt-get install -y openjdk-17-jre-headless).")
    return [
        java,
        "-Xms256m",
        "-Xmx512m",
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={KAFKA_LOG4J}",
        f"-Dkafka.logs.dir={cfg.kafka_logs}",
        f"-Dkafka.log.file={log_file}",
        "-cp",
        f"{cfg.kafka_libs}/*",
        main_class,
    ]


def random_cluster_id() -> str:
    """A Kafka Uuid in its base64 form, avoiding a leading '-' like Kafka's own generator."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not text.startswith("-"):
            return text


def format_kafka_storage_once(cfg: Config) -> None:
    if (cfg.kafka_data / "meta.properties").exists():
        return
    cluster_id = random_cluster_id()
    say(f"kafka: formatting storage in {cfg.kafka_data} (cluster id {cluster_id})")
    cmd = kafka_java_command(cfg, "kafka.tools.StorageTool", "storage-format.log")
    cmd += ["format", "--cluster-id", cluster_id, "--config", str(cfg.kafka_properties)]
    log = cfg.kafka_logs / "storage-format.log"
    run_checked(cmd, "kafka storage format", logs=[log], cwd=cfg.kafka_dir)


def server_log_started_since(log: Path, offset: int) -> bool:
    try:
        size = log.stat().st_size
        with open(log, "rb") as handle:
            handle.seek(offset if offset <= size else 0)
            return b"Kafka Server started" in handle.read()
    except FileNotFoundError:
        return False


def kafka_start(cfg: Config) -> int:
    mkdirs(cfg.kafka_data, cfg.kafka_logs)
    resolve_kafka_libs(cfg)
    write_kafka_properties(cfg)
    format_kafka_storage_once(cfg)
    ensure_port_free(cfg.kafka_port, "kafka")
    ensure_port_free(cfg.controller_port, "kafka controller")
    server_log = cfg.kafka_logs / "server.log"
    offset = server_log.stat().st_size if server_log.exists() else 0
    cmd = [*kafka_java_command(cfg, "kafka.Kafka", "server.log"), str(cfg.kafka_properties)]
    proc = spawn_detached(cmd, cfg.kafka_logs / "kafka.out", cwd=cfg.kafka_dir)
    write_pid(cfg, "kafka", proc.pid)

    def probe() -> str | None:
        missing = kafka_probe(cfg)
        if missing is None and not server_log_started_since(server_log, offset):
            return f"broker answers but {server_log} has no 'Kafka Server started' yet"
        return missing

    try:
        logs = [server_log, cfg.kafka_logs / "kafka.out"]
        wait_ready("kafka", proc, probe, KAFKA_READY_TIMEOUT_S, logs)
    except StackError:
        remove_pid(cfg, "kafka")
        raise
    return proc.pid


def kafka_stop(cfg: Config, pid: int) -> None:
    terminate_pid("kafka", pid)


# ----- PostgreSQL


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
        # Throwaway cluster: trade durability for speed.
        "fsync": "off",
        "synchronous_commit": "off",
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
    cmd = [str(bindir / "pg_isready"), "-q", "-h", HOST, "-p", str(cfg.pg_port), "-t", "2"]
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


# ----- SMTP sink


def smtp_address(cfg: Config) -> str:
    return f"{HOST}:{cfg.smtp_port} (mailbox {cfg.mailbox})"


def venv_python() -> Path:
    python = REPO_ROOT / ".venv" / "bin" / "python"
    if not python.exists():
        raise StackError(
            f"smtp: {python} does not exist. The SMTP sink needs the project venv (aiosmtpd): "
            f"run `uv sync` in {REPO_ROOT} first."
        )
    return python


def smtp_is_ours(cfg: Config, pid: int) -> bool:
    args = cmdline(pid)
    return any(arg.endswith("smtp_sink.py") for arg in args) and str(cfg.mailbox) in args


def smtp_probe(cfg: Config) -> str | None:
    try:
        with (
            socket.create_connection((HOST, cfg.smtp_port), timeout=2.0) as sock,
            sock.makefile("rb") as reader,
        ):
            banner = reader.readline(512)
            sock.sendall(b"QUIT\r\n")
    except OSError as exc:
        return f"no SMTP banner from {HOST}:{cfg.smtp_port} ({exc})"
    if not banner.startswith(b"220"):
        return f"unexpected SMTP banner from {HOST}:{cfg.smtp_port}: {banner!r}"
    return None


def smtp_start(cfg: Config) -> int:
    python = venv_python()
    mkdirs(cfg.mailbox)
    ensure_port_free(cfg.smtp_port, "smtp")
    cmd = [
        str(python), str(SMTP_SINK),
        "--host", HOST, "--port", str(cfg.smtp_port), "--mailbox", str(cfg.mailbox),
    ]  # fmt: skip
    proc = spawn_detached(cmd, cfg.smtp_log, cwd=REPO_ROOT)
    write_pid(cfg, "smtp", proc.pid)
    try:
        wait_ready("smtp", proc, lambda: smtp_probe(cfg), SMTP_READY_TIMEOUT_S, [cfg.smtp_log])
    except StackError:
        remove_pid(cfg, "smtp")
        raise
    return proc.pid


def smtp_stop(cfg: Config, pid: int) -> None:
    terminate_pid("smtp", pid)


COMPONENTS: dict[str, Component] = {
    "postgres": Component("postgres", pg_address, pg_is_ours, pg_probe, pg_start, pg_stop),
    "kafka": Component("kafka", kafka_address, kafka_is_ours, kafka_probe, kafka_start, kafka_stop),
    "smtp": Component("smtp", smtp_address, smtp_is_ours, smtp_probe, smtp_start, smtp_stop),
}


# --------------------------------------------------------------------------- commands


def forget_stale_pid(cfg: Config, comp: Component) -> None:
    pid = read_pid(cfg, comp.name)
    if pid is None:
        remove_pid(cfg, comp.name)  # unreadable contents
        return
    if not is_alive(pid):
        say(f"{comp.name}: removing stale pid file (pid {pid} is not running)")
    elif not comp.is_ours(cfg, pid):
        command = " ".join(cmdline(pid))[:120]
        say(
            f"{comp.name}: pid file names pid {pid}, which is not this stack's {comp.name} "
            f"({command!r}); leaving that process alone, removing the pid file"
        )
    remove_pid(cfg, comp.name)


def up_component(cfg: Config, comp: Component) -> None:
    pid = live_pid(cfg, comp)
    if pid is not None:
        problem = comp.probe(cfg)
        if problem is not None:
            raise StackError(
                f"{comp.name}: pid {pid} runs but does not answer: {problem}. "
                f"Try `stack.py down --only {comp.name}` then `up` again."
            )
        say(f"{comp.name}: already running (pid {pid}, {comp.address(cfg)})")
        if comp.name == "kafka" and not kafka_libs_current(cfg):
            say("kafka: note: pom.xml changed since the jars were resolved; down+up to use them")
        return
    if cfg.pid_file(comp.name).exists():
        forget_stale_pid(cfg, comp)
    started = time.monotonic()
    pid = comp.start(cfg)
    say(f"{comp.name} ready in {time.monotonic() - started:.1f} s (pid {pid}, {comp.address(cfg)})")


def down_component(cfg: Config, comp: Component) -> int | None:
    """Stop the component if its pid file names a live process of ours; return that pid."""
    pid = read_pid(cfg, comp.name)
    if pid is None or not is_alive(pid) or not comp.is_ours(cfg, pid):
        if cfg.pid_file(comp.name).exists():
            forget_stale_pid(cfg, comp)
        say(f"{comp.name}: not running")
        return None
    started = time.monotonic()
    comp.stop(cfg, pid)
    remove_pid(cfg, comp.name)
    say(f"{comp.name}: stopped pid {pid} in {time.monotonic() - started:.1f} s")
    return pid


def cmd_up(cfg: Config, names: Sequence[str]) -> int:
    mkdirs(cfg.local, cfg.pids, cfg.local / "objects")
    started = time.monotonic()
    for name in names:
        up_component(cfg, COMPONENTS[name])
    say(f"stack up in {time.monotonic() - started:.1f} s (state in {cfg.local})")
    return 0


def cmd_down(cfg: Config, names: Sequence[str]) -> int:
    stopped = [down_component(cfg, COMPONENTS[name]) for name in reversed(names)]
    survivors = [pid for pid in stopped if pid is not None and is_alive(pid)]
    if survivors:
        raise StackError(f"these processes are still alive after stopping: {survivors}")
    return 0


def cmd_status(cfg: Config, names: Sequence[str]) -> int:
    all_ok = True
    for name in names:
        comp = COMPONENTS[name]
        pid = live_pid(cfg, comp)
        if pid is None:
            state, problem = "stopped", None
        else:
            problem = comp.probe(cfg)
            state = "running" if problem is None else "unhealthy"
        all_ok = all_ok and state == "running"
        pid_text = f"pid {pid}" if pid is not None else "pid -"
        line = f"{name:<9} {state:<9} {pid_text:<11} {comp.address(cfg)}"
        say(line + (f"  [{problem}]" if problem else ""))
    return 0 if all_ok else 3


def parse_only(raw: str | None) -> list[str]:
    if raw is None:
        return list(ALL_COMPONENTS)
    wanted = [part.strip() for part in raw.split(",") if part.strip()]
    unknown = [name for name in wanted if name not in ALL_COMPONENTS]
    if unknown or not wanted:
        raise StackError(f"--only takes a comma list of {', '.join(ALL_COMPONENTS)}; got {raw!r}")
    return [name for name in ALL_COMPONENTS if name in wanted]


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="rosterflow local development stack (Kafka, PostgreSQL, SMTP sink)"
    )
    parser.add_argument("command", choices=("up", "down", "status"))
    parser.add_argument("--only", metavar="NAMES", help="comma list of: kafka,postgres,smtp")
    return parser.parse_args(list(argv))


def report_failure(error: StackError) -> None:
    print(f"ERROR: {error}", file=sys.stderr, flush=True)
    for log in error.logs:
        header = f"--- last {LOG_TAIL_LINES} lines of {log} ---"
        print(f"{header}\n{tail(log)}", file=sys.stderr, flush=True)


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    commands: dict[str, Callable[[Config, Sequence[str]], int]] = {
        "up": cmd_up,
        "down": cmd_down,
        "status": cmd_status,
    }
    try:
        cfg = load_config()
        return commands[args.command](cfg, parse_only(args.only))
    except StackError as error:
        report_failure(error)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
