"""Prometheus: Debian's `prometheus` package, run with this stack's config and data directory.

The package's own service is not used: /usr/bin/prometheus runs as a process of the
stack on 127.0.0.1:<ROSTERFLOW_LOCAL_PROMETHEUS_PORT> with its state under
.local/prometheus. It loads the repository's rule files (copied into
.local/prometheus/rules, so a checkout can load its own with a reload) and scrapes
the service instances that rosterflow.launcher announces as file_sd target files in
.local/prometheus/targets (one file per running process, removed when it stops).
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path

from .component import Component
from .config import DEPLOY_DIR, HOST, Config
from .errors import StackError
from .procs import (
    cmdline,
    ensure_port_free,
    is_alive,
    mkdirs,
    run_checked,
    say,
    spawn_detached,
    terminate_pid,
    wait_ready,
    write_pid,
)

PROMETHEUS = Path("/usr/bin/prometheus")
RULES_SOURCE = DEPLOY_DIR.parent / "observability" / "prometheus"
PROMETHEUS_READY_TIMEOUT_S = 60.0
# Short intervals: a test run lasts a minute, and rate() needs two samples in its window.
SCRAPE_INTERVAL = "2s"
EVALUATION_INTERVAL = "2s"


def prometheus_address(cfg: Config) -> str:
    return f"http://{HOST}:{cfg.prometheus_port} (targets {cfg.prometheus_targets})"


def prometheus_is_ours(cfg: Config, pid: int) -> bool:
    args = cmdline(pid)
    return (
        bool(args)
        and args[0] == str(PROMETHEUS)
        and f"--storage.tsdb.path={cfg.prometheus_data}" in args
    )


def prometheus_probe(cfg: Config) -> str | None:
    url = f"http://{HOST}:{cfg.prometheus_port}/-/ready"
    try:
        with urllib.request.urlopen(url, timeout=2.0) as response:
            status = response.status
    except (OSError, urllib.error.URLError) as exc:
        return f"no answer from {url} ({exc})"
    return None if status == 200 else f"{url} answered HTTP {status}"


def install_prometheus() -> None:
    if os.geteuid() != 0:
        raise StackError(
            f"prometheus: {PROMETHEUS} is missing; install it: "
            "sudo apt-get install -y --no-install-recommends prometheus"
        )
    say(
        f"prometheus: {PROMETHEUS} is missing; installing the Debian package now "
        "(apt-get update && apt-get install -y --no-install-recommends prometheus) ..."
    )
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run_checked(["apt-get", "update"], "apt-get update", env=env)
    run_checked(
        ["apt-get", "install", "-y", "--no-install-recommends", "prometheus"],
        "apt-get install prometheus",
        env=env,
    )
    if not PROMETHEUS.exists():
        raise StackError(f"prometheus: installed the package but {PROMETHEUS} does not exist")


def prometheus_config() -> dict[str, object]:
    """Every announced service instance, one job per service (rosterflow-<service>)."""
    return {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": EVALUATION_INTERVAL},
        "rule_files": ["rules/*.yml"],
        "scrape_configs": [
            {
                "job_name": "rosterflow",
                "metrics_path": "/metrics",
                "file_sd_configs": [{"files": ["targets/*.json"], "refresh_interval": "5s"}],
                # The alerts and the dashboard select jobs named rosterflow-<service>.
                "relabel_configs": [
                    {
                        "source_labels": ["service"],
                        "target_label": "job",
                        "replacement": "rosterflow-$1",
                    }
                ],
            }
        ],
    }


def sync_rules(cfg: Config, source: Path = RULES_SOURCE) -> list[Path]:
    """Copy the rule files of this checkout to where Prometheus loads them; return the copies."""
    rules = cfg.prometheus_dir / "rules"
    mkdirs(rules)
    wanted = {path.name: path for path in sorted(source.glob("*.yml"))}
    for stale in rules.glob("*.yml"):
        if stale.name not in wanted:
            stale.unlink()
    for name, path in wanted.items():
        shutil.copyfile(path, rules / name)
    return [rules / name for name in wanted]


def reload(cfg: Config) -> None:
    """Make the running Prometheus read its config and rule files again."""
    url = f"http://{HOST}:{cfg.prometheus_port}/-/reload"
    request = urllib.request.Request(url, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30.0):
            pass
    except (OSError, urllib.error.URLError) as exc:
        raise StackError(f"prometheus: {url} failed ({exc})", [cfg.prometheus_log]) from exc


def forget_dead_targets(cfg: Config) -> list[Path]:
    """Remove the target files of processes that died without withdrawing them.

    The launcher names each file <process>-<pid>.json; a killed launcher leaves its
    files behind, which Prometheus would report as services down for good.
    """
    removed = []
    for path in cfg.prometheus_targets.glob("*.json"):
        pid = path.stem.rsplit("-", 1)[-1]
        if pid.isdigit() and not is_alive(int(pid)):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def write_config(cfg: Config) -> Path:
    mkdirs(cfg.prometheus_data, cfg.prometheus_targets)
    forget_dead_targets(cfg)
    sync_rules(cfg)
    # JSON is YAML: the standard library writes it.
    cfg.prometheus_config.write_text(json.dumps(prometheus_config(), indent=2) + "\n")
    return cfg.prometheus_config


def prometheus_start(cfg: Config) -> int:
    if not PROMETHEUS.exists():
        install_prometheus()
    ensure_port_free(cfg.prometheus_port, "prometheus")
    config = write_config(cfg)
    run_checked(
        [str(PROMETHEUS.with_name("promtool")), "check", "config", str(config)],
        "promtool check config",
    )
    cmd = [
        str(PROMETHEUS),
        f"--config.file={config}",
        f"--storage.tsdb.path={cfg.prometheus_data}",
        "--storage.tsdb.retention.time=7d",
        f"--web.listen-address={HOST}:{cfg.prometheus_port}",
        # Lets a checkout load its own rule files: POST /-/reload.
        "--web.enable-lifecycle",
    ]
    proc = spawn_detached(cmd, cfg.prometheus_log, cwd=cfg.prometheus_dir)
    write_pid(cfg, "prometheus", proc.pid)
    wait_ready(
        cfg,
        "prometheus",
        proc,
        lambda: prometheus_probe(cfg),
        PROMETHEUS_READY_TIMEOUT_S,
        [cfg.prometheus_log],
    )
    return proc.pid


def prometheus_refresh(cfg: Config) -> None:
    """Load this checkout's config and rule files into the running Prometheus."""
    write_config(cfg)
    reload(cfg)
    say(f"prometheus: reloaded the rules of {RULES_SOURCE}")


def prometheus_stop(cfg: Config, pid: int) -> None:
    terminate_pid("prometheus", pid)


COMPONENT = Component(
    "prometheus",
    prometheus_address,
    prometheus_is_ours,
    prometheus_probe,
    prometheus_start,
    prometheus_stop,
    prometheus_refresh,
)
