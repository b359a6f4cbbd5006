"""The alert rules and the dashboard are well-formed PromQL and name what they must.

Whether the metrics they use are exported is checked against the running
services in tests/e2e/test_operations.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import promql_parser
import pytest

from rosterflow.settings import LOCAL_DIR
from tests.support.observability import (
    ALERTS,
    DASHBOARD,
    GRAFANA_DURATION,
    alert_rules,
    dashboard_queries,
    metric_names,
)

SEVERITIES = {"critical", "warning"}


def promtool() -> str | None:
    local = LOCAL_DIR / "tools" / "bin" / "promtool"
    return str(local) if local.exists() else shutil.which("promtool")


def test_the_rule_file_is_valid() -> None:
    """promtool's check where it is installed; always the same checks by the parser."""
    rules = alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names)), "alert names repeat"
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations", "keep_firing_for"}
        assert rule["alert"].startswith("Rosterflow")
        promql_parser.parse(str(rule["expr"]))  # raises on a syntax error
        if "for" in rule:
            assert promql_parser.parse_duration(rule["for"]).total_seconds() > 0
        assert rule["labels"]["severity"] in SEVERITIES
        assert rule["annotations"]["summary"]
    tool = promtool()
    if tool is not None:
        checked = subprocess.run(
            [tool, "check", "rules", str(ALERTS)], capture_output=True, text=True, check=False
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert f"SUCCESS: {len(rules)} rules found" in checked.stdout


def test_the_alerts_cover_what_the_on_call_engineer_must_hear() -> None:
    by_metric: dict[str, set[str]] = {}
    for rule in alert_rules():
        for name in metric_names(str(rule["expr"])):
            by_metric.setdefault(name, set()).add(rule["alert"])
    assert "RosterflowServiceDown" in by_metric["up"]
    assert "RosterflowConsumerLagGrowing" in by_metric["rosterflow_consumer_lag"]
    assert "RosterflowJobStuckInStage" in by_metric["rosterflow_job_oldest_waiting_seconds"]
    assert "RosterflowJobFailureRate" in by_metric["rosterflow_jobs_finished_total"]
    assert "RosterflowDeadLetters" in by_metric["rosterflow_dead_letters_total"]
    assert "RosterflowConsumerHalted" in by_metric["rosterflow_consumer_halted"]
    assert (
        "RosterflowStageAttemptsExhausted" in by_metric["rosterflow_stage_attempts_exhausted_total"]
    )
    assert {"RosterflowSmtpFailing", "RosterflowEmailsUndelivered"} <= by_metric[
        "rosterflow_emails_total"
    ]


def test_the_dashboard_parses_and_has_the_panels() -> None:
    board = json.loads(DASHBOARD.read_text())
    assert board["uid"] == "rosterflow"
    titles = " | ".join(p["title"].lower() for p in board["panels"])
    for needed in ("jobs by state", "per minute", "stage duration", "lag", "dead letters", "email"):
        assert needed in titles
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        if panel["type"] != "row":
            assert panel["targets"], panel["title"]
    for query in dashboard_queries():
        promql_parser.parse(GRAFANA_DURATION.sub("5m", query))


def test_metric_names_come_from_the_syntax_tree() -> None:
    query = (
        'histogram_quantile(0.9, sum by (le) (rate(a_seconds_bucket{job="x"}[5m])))'
        ' / on() group_left max_over_time(b[10m:1m]) + {__name__="c"} - -d offset 1h'
    )
    assert metric_names(query) == {"a_seconds_bucket", "b", "c", "d"}
    # Label names, functions and grouping labels are not metrics.
    assert metric_names('sum by (state) (rate(x_total{state="up"}[1m]))') == {"x_total"}
    with pytest.raises(ValueError, match="pattern"):
        metric_names('{__name__=~"rosterflow_.*"}')
