"""The stack's Prometheus scrapes each service process while the launcher runs it."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import httpx

from rosterflow.launcher import PROMETHEUS_TARGETS, service_processes
from rosterflow.settings import LOCAL_DIR, Settings
from rosterflow.testing import wait_for
from tests.support.observability import ALERTS, SLOS, alert_rules
from tests.support.prometheus import active_targets, load_this_checkout


async def test_a_running_service_is_scraped_and_forgotten_when_it_stops(
    settings: Settings, tmp_path: Path
) -> None:
    load_this_checkout()
    async with httpx.AsyncClient(timeout=10) as client:
        with service_processes(settings, tmp_path / "logs", names=("notifier",)) as services:
            (notifier,) = services.running
            address = notifier.ops_url.removeprefix("http://")
            files = list(PROMETHEUS_TARGETS.glob(f"notifier-{notifier.process.pid}.json"))
            assert len(files) == 1

            async def scraped() -> dict[str, Any] | None:
                for target in await active_targets(client):
                    if target["labels"].get("instance") == address and target["health"] == "up":
                        return target
                return None

            target = await wait_for(scraped, within=30, what="the notifier scraped")
            assert target["labels"]["job"] == "rosterflow-notifier"
            assert target["labels"]["service"] == "notifier"
            assert target["scrapeUrl"] == f"{notifier.ops_url}/metrics"
        assert not files[0].exists()

        async def forgotten() -> bool:
            return all(t["labels"].get("instance") != address for t in await active_targets(client))

        await wait_for(forgotten, within=30, what="the stopped notifier no longer a target")


def test_the_stack_config_passes_promtool() -> None:
    load_this_checkout()
    config = LOCAL_DIR.resolve() / "prometheus" / "prometheus.yml"
    done = subprocess.run(
        ["promtool", "check", "config", str(config)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # The rules of this checkout, as Prometheus loads them.
    assert f"SUCCESS: {len(alert_rules(ALERTS))} rules found" in done.stdout
    assert f"SUCCESS: {len(alert_rules(SLOS))} rules found" in done.stdout


def test_up_forgets_the_targets_of_processes_that_died() -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = PROMETHEUS_TARGETS / f"validator-{dead.pid}.json"
    PROMETHEUS_TARGETS.mkdir(parents=True, exist_ok=True)
    stale.write_text('[{"targets": ["127.0.0.1:1"], "labels": {"service": "validator"}}]')
    load_this_checkout()
    assert not stale.exists()
