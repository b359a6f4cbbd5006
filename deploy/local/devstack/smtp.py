"""The SMTP sink (deploy/local/smtp_sink.py), run with the project venv's python."""

from __future__ import annotations

import socket
from pathlib import Path

from .component import Component
from .config import HOST, REPO_ROOT, SMTP_SINK, Config
from .errors import StackError
from .procs import (
    cmdline,
    ensure_port_free,
    mkdirs,
    spawn_detached,
    terminate_pid,
    wait_ready,
    write_pid,
)

SMTP_READY_TIMEOUT_S = 20.0


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
    wait_ready(cfg, "smtp", proc, lambda: smtp_probe(cfg), SMTP_READY_TIMEOUT_S, [cfg.smtp_log])
    return proc.pid


def smtp_stop(cfg: Config, pid: int) -> None:
    terminate_pid("smtp", pid)


COMPONENT = Component("smtp", smtp_address, smtp_is_ours, smtp_probe, smtp_start, smtp_stop)
