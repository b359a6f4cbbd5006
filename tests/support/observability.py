"""The dashboard's queries and the alert rules' expressions, and the metrics they name."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import promql_parser
import yaml

from rosterflow.settings import REPO_ROOT

OBSERVABILITY = REPO_ROOT / "deploy" / "observability"
DASHBOARD = OBSERVABILITY / "grafana" / "dashboards" / "rosterflow.json"
ALERTS = OBSERVABILITY / "prometheus" / "alerts.yml"
SLOS = OBSERVABILITY / "prometheus" / "slos.yml"
RULE_FILES = (ALERTS, SLOS)
RULE_TESTS = OBSERVABILITY / "prometheus" / "tests"


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def dashboard_queries(path: Path = DASHBOARD) -> list[str]:
    board = json.loads(path.read_text())
    return [
        target["expr"]
        for panel in _panels(board["panels"])
        for target in panel.get("targets", [])
        if target.get("expr")
    ]


def alert_rules(path: Path = ALERTS) -> list[dict[str, Any]]:
    rules = yaml.safe_load(path.read_text())
    return [rule for group in rules["groups"] for rule in group["rules"]]


def rule_expressions(path: Path = ALERTS) -> list[str]:
    return [str(rule["expr"]) for rule in alert_rules(path)]


def every_rule() -> list[dict[str, Any]]:
    """Every alerting and recording rule of every rule file."""
    return [rule for path in RULE_FILES for rule in alert_rules(path)]


# Grafana's built-in interval variables stand for a duration.
GRAFANA_DURATION = re.compile(r"\$__(rate_interval|interval|range)\b")


def metric_names(query: str) -> set[str]:
    """Every metric a PromQL expression selects, from its parsed syntax tree."""
    expr = promql_parser.parse(GRAFANA_DURATION.sub("5m", query))
    names: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                names.add(node.name)
            for matcher in node.matchers.matchers if node.matchers else []:
                if matcher.name == "__name__":
                    if matcher.op != promql_parser.MatchOp.Equal:
                        raise ValueError(f"a metric name by pattern cannot be checked: {query}")
                    names.add(matcher.value)

    promql_parser.walk(expr, visit)
    return names
