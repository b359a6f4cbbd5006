"""CPU time per process from /proc, for saying where a benchmark's CPU went.

Linux only. A process's CPU is utime + stime of /proc/<pid>/stat (clock ticks);
PostgreSQL's is the postmaster's own and reaped children's time plus that of
its live children (backends, WAL writer, checkpointer, …), with the backends
serving one database told apart by their process title.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

TICK = float(os.sysconf("SC_CLK_TCK"))


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command may hold spaces and parentheses: split after the last ')'.
    return text[text.rindex(")") + 2 :].split()


def process_seconds(pid: int, *, children: bool = False) -> float:
    """utime + stime (and the reaped children's, with ``children``) of one process."""
    fields = _stat(pid)
    if fields is None:
        return 0.0
    # fields[0] is field 3 (state): utime/stime are fields 14/15, cutime/cstime 16/17.
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / TICK


def _children_of(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat(int(entry.name))
        if fields is not None and int(fields[1]) == parent:
            found.append(int(entry.name))
    return found


def _title(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return ""
    # Arguments and any line breaks in them (python -c '…') as single spaces;
    # the spaces around keep " <database> " findable in a backend's title.
    return " " + " ".join(raw.replace("\0", " ").split()) + " "


def postgres_seconds(postmaster: int, database: str) -> tuple[float, float]:
    """(the backends of ``database``, everything else of the cluster) in CPU seconds."""
    own, other = 0.0, process_seconds(postmaster, children=True)
    for pid in _children_of(postmaster):
        seconds = process_seconds(pid)
        if f" {database} " in _title(pid):
            own += seconds
        else:
            other += seconds
    return own, other


def machine_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    first = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in first[:8]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values) - idle) / TICK, sum(values) / TICK


@dataclass(frozen=True)
class Snapshot:
    seconds: Mapping[str, float]
    busy: float
    total: float
    # Every other process by pid: (its command, CPU seconds), to name what else ran.
    others: Mapping[int, tuple[str, float]]


def _all_processes() -> dict[int, tuple[str, float, int]]:
    """pid → (command, CPU seconds, parent pid) for every process now."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None:
                ticks = int(fields[11]) + int(fields[12])
                found[int(entry.name)] = (
                    _title(int(entry.name))[:60],
                    ticks / TICK,
                    int(fields[1]),
                )
    return found


def foreign_seconds(roots: set[int]) -> dict[int, float]:
    """CPU seconds by pid of every process outside the trees rooted at ``roots``
    (this run's processes, the stack's servers): what else ran on the machine.
    Compare two with ``foreign_spent``."""
    processes = _all_processes()
    inside = set(roots)
    grew = True
    while grew:  # a child's pid may be lower than its parent's: iterate to a fixed point
        grew = False
        for pid, (_, _, parent) in processes.items():
            if parent in inside and pid not in inside:
                inside.add(pid)
                grew = True
    return {pid: cpu for pid, (_, cpu, _) in processes.items() if pid not in inside}


def foreign_spent(before: Mapping[int, float], after: Mapping[int, float]) -> float:
    """CPU seconds spent between two ``foreign_seconds`` by the processes alive at
    the second (what ended in between is not seen)."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def snapshot(pids: Mapping[str, int], postmaster: int | None, database: str) -> Snapshot:
    seconds = {name: process_seconds(pid) for name, pid in pids.items()}
    if postmaster is not None:
        own, other = postgres_seconds(postmaster, database)
        seconds = {**seconds, "postgres (this database)": own, "postgres (other)": other}
    busy, total = machine_seconds()
    known = set(pids.values()) | ({postmaster} if postmaster is not None else set())
    others = {
        pid: (title, cpu)
        for pid, (title, cpu, parent) in _all_processes().items()
        if pid not in known and parent != postmaster
    }
    return Snapshot(seconds, busy, total, others)


def report(before: Snapshot, after: Snapshot, jobs: int) -> list[str]:
    """Lines: CPU ms per job by process, largest first, and the machine's busy share."""
    spent = {name: after.seconds[name] - before.seconds.get(name, 0.0) for name in after.seconds}
    accounted = sum(spent.values())
    busy = after.busy - before.busy
    wall_cores = after.total - before.total
    lines = [
        f"    {name:<28} {seconds * 1000 / jobs:7.1f} ms/job  {seconds:7.2f} s"
        for name, seconds in sorted(spent.items(), key=lambda item: -item[1])
    ]
    others = sorted(
        (
            (cpu - before.others.get(pid, (title, 0.0))[1], title)
            for pid, (title, cpu) in after.others.items()
        ),
        reverse=True,
    )
    rest = sum(seconds for seconds, _ in others)
    lines.append(
        f"    {'other processes':<28} {rest * 1000 / jobs:7.1f} ms/job  {rest:7.2f} s"
        f"  (most: {'; '.join(f'{t.strip()} {s:.1f} s' for s, t in others[:3])})"
    )
    lines.append(
        f"    {'accounted':<28} {accounted * 1000 / jobs:7.1f} ms/job  {accounted:7.2f} s"
        f" of {busy:.2f} s busy on the machine ({100 * busy / max(wall_cores, 1e-9):.0f} % of"
        f" {os.cpu_count()} cores)"
    )
    return lines


def local_pid(local_dir: Path, name: str) -> int | None:
    """The pid the local stack recorded for one of its components (kafka, postgres, smtp)."""
    try:
        return int((local_dir / "pids" / f"{name}.pid").read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
