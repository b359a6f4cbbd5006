"""promtool on the rule files and the configs, and its unit tests of every alert.

The unit tests live beside the rules (deploy/observability/prometheus/tests/):
each alert fires on a series that should trigger it, not before its `for`,
and stays quiet on a healthy series; each SLI is recorded as the share of bad
events. Debian's prometheus package (installed by `make up`) provides promtool.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import yaml

from rosterflow.settings import REPO_ROOT
from tests.support.observability import RULE_FILES, RULE_TESTS, every_rule


def promtool(*args: str) -> str:
    tool = shutil.which("promtool") or "/usr/bin/promtool"
    assert Path(tool).exists(), "promtool is missing: `make up` installs Debian's prometheus"
    done = subprocess.run([tool, *args], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_promtool_accepts_every_rule_file() -> None:
    out = promtool("check", "rules", *map(str, RULE_FILES))
    found = [int(n) for n in re.findall(r"SUCCESS: (\d+) rules found", out)]
    assert sum(found) == len(every_rule()), out
    assert len(found) == len(RULE_FILES)


def test_promtool_accepts_the_compose_config(tmp_path: Path) -> None:
    config = yaml.safe_load((REPO_ROOT / "deploy/compose/prometheus/prometheus.yml").read_text())
    # The container mounts the rule files under /etc/prometheus: point at the repository's.
    config["rule_files"] = [
        str(REPO_ROOT / "deploy/observability/prometheus" / Path(f).name)
        for f in config["rule_files"]
    ]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    assert "SUCCESS" in promtool("check", "config", str(path))


def test_promtool_unit_tests_pass_and_cover_every_alert() -> None:
    files = sorted(RULE_TESTS.glob("*.test.yml"))
    out = promtool("test", "rules", *map(str, files))
    assert out.count("SUCCESS") == len(files), out
    alerts = {rule["alert"] for rule in every_rule() if "alert" in rule}
    firing: set[str] = set()
    quiet: set[str] = set()
    recorded: set[str] = set()
    for path in files:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check["exp_alerts"] else quiet).add(check["alertname"])
            for check in case.get("promql_expr_test", []):
                recorded.update(
                    sample["labels"] for sample in check["exp_samples"] if "labels" in sample
                )
    assert firing == alerts, f"alerts no test fires: {sorted(alerts - firing)}"
    assert quiet == alerts, f"alerts no test keeps quiet: {sorted(alerts - quiet)}"
    slos = {rule["labels"]["slo"] for rule in every_rule() if "record" in rule}
    assert {f'{{slo="{slo}"}}' for slo in slos} <= recorded


def test_every_alert_links_its_runbook_entry() -> None:
    runbook = (REPO_ROOT / "docs" / "runbook.md").read_text()
    entries = {
        heading.lower(): body
        for heading, body in re.findall(r"^## (\w+)\n(.*?)(?=^## |\Z)", runbook, re.M | re.S)
    }
    alerts = [rule for rule in every_rule() if "alert" in rule]
    assert set(entries) == {rule["alert"].lower() for rule in alerts}
    for rule in alerts:
        anchor = rule["alert"].lower()
        assert rule["annotations"]["runbook_url"] == f"docs/runbook.md#{anchor}"
        body = entries[anchor]
        for part in ("**What it means.**", "**How to look.**", "**What to do.**"):
            assert part in body, (rule["alert"], part)
        assert re.search(r"python -m rosterflow\.ops|rosterflow_\w+|slo:sli_error", body), rule[
            "alert"
        ]
