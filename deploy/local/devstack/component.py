"""What the commands need from each component (Kafka, PostgreSQL, SMTP sink)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .config import Config
from .procs import is_alive, read_pid


@dataclass(frozen=True)
class Component:
    """One part of the stack as the commands see it.

    `probe` returns None when the component answers, else what is missing; `start`
    returns the pid it recorded in the pid file; `stop` is only called with a live pid
    that `is_ours` accepted (its /proc cmdline names this stack's files). `refresh`, if
    given, makes an already running component take this checkout's files again.
    """

    name: str
    address: Callable[[Config], str]
    is_ours: Callable[[Config, int], bool]
    probe: Callable[[Config], str | None]
    start: Callable[[Config], int]
    stop: Callable[[Config, int], None]
    refresh: Callable[[Config], None] | None = None


def live_pid(cfg: Config, comp: Component) -> int | None:
    """The pid from the pid file if it is alive and really is this stack's component."""
    pid = read_pid(cfg, comp.name)
    if pid is None or not is_alive(pid) or not comp.is_ours(cfg, pid):
        return None
    return pid
