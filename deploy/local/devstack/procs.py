"""Processes of the stack: pid files, liveness via /proc, spawning, waiting, stopping, logs."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from .config import HOST, Config
from .errors import StackError

STOP_TIMEOUT_S = 20.0
LOG_TAIL_LINES = 30


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
    cfg: Config,
    name: str,
    proc: subprocess.Popen[bytes],
    probe: Callable[[], str | None],
    timeout: float,
    logs: Sequence[Path],
) -> None:
    """Poll `probe` (None = ready, else what is missing) until ready, death or timeout.

    On failure the pid file is forgotten, so the next `up` starts afresh.
    """
    deadline = time.monotonic() + timeout
    missing = "not probed yet"
    while time.monotonic() < deadline:
        code = proc.poll()
        if code is not None:
            remove_pid(cfg, name)
            raise StackError(f"{name}: process {proc.pid} exited with code {code} on startup", logs)
        result = probe()
        if result is None:
            return
        missing = result
        time.sleep(0.25)
    abandon_startup(proc)
    remove_pid(cfg, name)
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
