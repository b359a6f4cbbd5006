"""The up/down/status commands over the selected components, and the command line."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence

from . import kafka, postgres, prometheus, s3, smtp
from .component import Component, live_pid
from .config import Config, load_config
from .errors import StackError
from .procs import LOG_TAIL_LINES, cmdline, is_alive, mkdirs, read_pid, remove_pid, say, tail

ALL_COMPONENTS = ("postgres", "kafka", "smtp", "s3", "prometheus")
COMPONENTS: dict[str, Component] = {
    "postgres": postgres.COMPONENT,
    "kafka": kafka.COMPONENT,
    "smtp": smtp.COMPONENT,
    "s3": s3.COMPONENT,
    "prometheus": prometheus.COMPONENT,
}


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
        if comp.refresh is not None:
            comp.refresh(cfg)
        if comp.name == "kafka" and not kafka.kafka_libs_current(cfg):
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
        description="rosterflow local development stack "
        "(Kafka, PostgreSQL, SMTP sink, S3, Prometheus)"
    )
    parser.add_argument("command", choices=("up", "down", "status"))
    parser.add_argument(
        "--only", metavar="NAMES", help="comma list of: kafka,postgres,smtp,s3,prometheus"
    )
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
