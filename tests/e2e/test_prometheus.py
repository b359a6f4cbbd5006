"""Every dashboard panel, alert and recording rule, evaluated on a real Prometheus.

The five services run as processes (the launcher announces them to the local
stack's Prometheus, which loads this checkout's rules) and produce a completed,
a cancelled, a failed and a held job and a dead letter. Once Prometheus has
scraped what happened, every expression of every dashboard panel and every
alerting and recording rule is evaluated through its HTTP API, and each must
return the series it is meant to show: the label values its legend or
annotations name, for the states, outcomes, services and objectives the run
produced.

Other runs on the same machine may be scraped too: the checks ask for at least
what this run produced, never for exactly it.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import uuid4

import asyncpg
import httpx
import promql_parser
import pytest
from aiokafka import AIOKafkaProducer
from pydantic import SecretStr

from rosterflow import db
from rosterflow.kafka.broker import topic_name
from rosterflow.launcher import Services, free_port, service_processes
from rosterflow.settings import (
    AuthSettings,
    DatabaseSettings,
    HttpSettings,
    KafkaSettings,
    Settings,
    StorageSettings,
)
from rosterflow.testing import (
    TEST_AUTH_SECRET,
    School,
    bearer,
    delete_prefixed_topics,
    mint_token,
    sample_roster,
    school_age_numbers,
    seed_active_patients,
    seed_school,
    wait_for,
)
from rosterflow.topics import IMPORT_CONFIRMED
from tests.support.database import ADMIN_DSN, with_database
from tests.support.observability import DASHBOARD, GRAFANA_DURATION, every_rule
from tests.support.prometheus import active_targets, api, load_this_checkout, query

SERVICES = ("ingest", "validator", "importer", "archiver", "notifier")
Series = list[dict[str, Any]]


@dataclass
class Evaluated:
    """What Prometheus answered, after the run, while the services still ran."""

    addresses: dict[str, str]  # service -> the instance label of this run's process
    prefix: str  # this run's topic and consumer-group prefix
    window: str  # covers the whole run: stands for Grafana's $__rate_interval
    panels: dict[tuple[str, str], Series] = field(default_factory=dict)  # (title, refId)
    rules: dict[str, Series] = field(default_factory=dict)  # alert or record + slo
    signals: dict[str, Series] = field(default_factory=dict)  # alert -> signal
    signal_queries: dict[str, str] = field(default_factory=dict)
    alerts: Series = field(default_factory=list)
    recorded: dict[str, Series] = field(default_factory=dict)  # record + slo -> its series
    # The trouble-only queries turned to the healthy case: see ONLY_ON_TROUBLE.
    healthy: dict[Any, Series] = field(default_factory=dict)


async def _run_jobs(services: Services, settings: Settings, conn: asyncpg.Connection) -> None:
    async def after_a_scrape() -> None:
        addresses = {s.ops_url.removeprefix("http://") for s in services.running}
        mark = time.time()
        async with httpx.AsyncClient(timeout=30) as client:

            async def scraped() -> bool:
                return await _scraped_after(client, addresses, mark)

            await wait_for(scraped, within=30, what="every process scraped")

    numbers = school_age_numbers()
    school = await seed_school(conn)
    await seed_active_patients(conn, school, numbers[100:104])  # 4 of 64 leave: archived
    held_school = await seed_school(conn, name="Norrskogens skola")
    # The failed job's own unit: an upload for a unit supersedes the job awaiting there.
    failing_unit = School(school.organisation_id, uuid4())
    await conn.execute(
        "INSERT INTO units (id, organisation_id, name, school_level) VALUES ($1, $2, $3, $4)",
        failing_unit.unit_id,
        school.organisation_id,
        "Ängskolan",
        "compulsory",
    )
    await seed_active_patients(conn, held_school, numbers[300:310])  # 10 of 30: held

    def headers(s: School) -> dict[str, str]:
        email = f"admin-{uuid4().hex[:6]}@skolhalsan.example"
        return bearer(mint_token([s.organisation_id], user_id="u-prom", email=email))

    async def upload(client: httpx.AsyncClient, s: School, body: bytes, archive: bool) -> str:
        params = {
            "organisation_id": str(s.organisation_id),
            "unit_id": str(s.unit_id),
            "file_name": "elever.csv",
            "archive_missing": str(archive).lower(),
        }
        response = await client.post("/v1/imports", params=params, content=body)
        assert response.status_code == 202, response.text
        job_id: str = response.json()["id"]
        return job_id

    async def reach(client: httpx.AsyncClient, job_id: str, states: set[str]) -> dict[str, Any]:
        last: dict[str, Any] = {}

        async def probe() -> dict[str, Any] | None:
            last.update((await client.get(f"/v1/imports/{job_id}")).json())
            return last if last["state"] in states else None

        try:
            return await wait_for(probe, within=90, what=f"job reaching {states}")
        except TimeoutError as exc:
            seen = {k: last.get(k) for k in ("state", "error_code", "progress")}
            raise AssertionError(f"job {job_id} never reached {states}: {seen}") from exc

    async with (
        httpx.AsyncClient(base_url=services.base_url, headers=headers(school), timeout=30) as a,
        httpx.AsyncClient(
            base_url=services.base_url, headers=headers(held_school), timeout=30
        ) as b,
    ):
        roster = sample_roster(60, numbers, invalid=3).to_csv().encode()
        small = sample_roster(10, numbers).to_csv().encode()
        completed = await upload(a, school, roster, archive=True)
        await reach(a, completed, {"awaiting_confirmation"})
        assert (await a.post(f"/v1/imports/{completed}/confirm")).status_code == 200
        assert (await reach(a, completed, {"completed", "failed"}))["state"] == "completed"
        # Every consumer has handled a message: FastStream's counters exist from here on,
        # and a scrape sees them before the next messages (rate() counts from there).
        await after_a_scrape()
        cancelled = await upload(a, school, small, archive=False)
        failed = await upload(a, failing_unit, small, archive=False)
        held = await upload(
            b, held_school, sample_roster(20, numbers[200:]).to_csv().encode(), True
        )
        for job_id in (cancelled, failed, held):
            await reach(a if job_id != held else b, job_id, {"awaiting_confirmation"})
        assert (await b.post(f"/v1/imports/{held}/confirm")).status_code == 200
        assert (await a.post(f"/v1/imports/{cancelled}/cancel")).status_code == 200
        # A confirmation the importer cannot read: dead-lettered, and its job failed.
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers)
        await producer.start()
        try:
            await producer.send_and_wait(
                topic_name(settings.kafka, IMPORT_CONFIRMED),
                json.dumps({"job_id": failed, "confirmed": "not a confirmation"}).encode(),
                key=failed.encode(),
            )
        finally:
            await producer.stop()
        assert (await reach(a, cancelled, {"cancelled"}))["state"] == "cancelled"
        assert (await reach(a, failed, {"failed"}))["error_code"] == "invalid_event"
        await reach(b, held, {"archiving"})

        async def held_now() -> bool:
            at = await conn.fetchval("SELECT archive_held_at FROM jobs WHERE id = $1", held)
            return at is not None

        await wait_for(held_now, within=60, what="the archive held")

        async def emailed() -> bool:
            sent = await conn.fetchval("SELECT count(*) FROM notifications WHERE state = 'sent'")
            return bool(sent >= 3)  # completed, cancelled, failed

        await wait_for(emailed, within=60, what="three emails sent")


def signal(expr: Any) -> str:
    """What an alert watches: its expression without the thresholds and conditions.

    ``x > 10`` → ``x``; ``a and b`` / ``a unless b`` → the signal of ``a``;
    ``a or b`` → both signals.
    """
    if isinstance(expr, promql_parser.ParenExpr):
        return signal(expr.expr)
    if isinstance(expr, promql_parser.BinaryExpr):
        op = str(expr.op)
        if op in (">", "<", ">=", "<=", "==", "!=", "and", "unless"):
            return signal(expr.lhs)
        if op == "or":
            return f"({signal(expr.lhs)}) or ({signal(expr.rhs)})"
    return str(expr.prettify())


def test_an_alert_s_signal_drops_its_thresholds_and_conditions() -> None:
    def of(expr: str) -> str:
        return signal(promql_parser.parse(expr))

    assert of('up{job=~"r.*"} == 0') == 'up{job=~"r.*"}'
    assert of("sum by (g) (x) > 10 and sum by (g) (deriv(x[15m])) > 0") == "sum by (g) (x)"
    assert of("sum(a) > 0 unless sum(b) > 0") == "sum(a)"
    assert of("(a > 0.144 and b > 0.144) or (c > 0.06 and d > 0.06)") == "(a) or (c)"


def _panels() -> list[dict[str, Any]]:
    board = json.loads(DASHBOARD.read_text())
    return [p for p in board["panels"] if p["type"] != "row"]


async def _scraped_after(client: httpx.AsyncClient, addresses: set[str], since: float) -> bool:
    done = {
        t["labels"]["instance"]
        for t in await active_targets(client)
        if t["health"] == "up"
        and t["labels"].get("instance") in addresses
        and _timestamp(t["lastScrape"]) > since
    }
    return done == addresses


def _timestamp(rfc3339: str) -> float:
    # Python 3.11 reads at most microseconds; Prometheus writes nanoseconds.
    return datetime.fromisoformat(re.sub(r"(\.\d{6})\d*", r"\1", rfc3339)).timestamp()


async def _evaluate(services: Services, settings: Settings, started: float) -> Evaluated:
    addresses = {s.name: s.ops_url.removeprefix("http://") for s in services.running}
    window = f"{math.ceil(time.time() - started) + 60}s"
    result = Evaluated(addresses, settings.kafka.prefix, window)
    async with httpx.AsyncClient(timeout=30) as client:
        # Two scrapes of every process after the last event: rate() needs two samples.
        for _ in range(2):
            mark = time.time()

            async def scraped(mark: float = mark) -> bool:
                return await _scraped_after(client, set(addresses.values()), mark)

            await wait_for(scraped, within=30, what="every process scraped")
        # The rules are evaluated every 2 s: let one evaluation see the last scrape.
        mark = time.time()

        async def rules_evaluated() -> bool:
            groups = (await api(client, "rules"))["groups"]
            return all(_timestamp(g["lastEvaluation"]) > mark for g in groups)

        await wait_for(rules_evaluated, within=30, what="every rule group evaluated")
        for panel in _panels():
            for target in panel["targets"]:
                expr = GRAFANA_DURATION.sub(window, target["expr"])
                key = (panel["title"], target["refId"])
                result.panels[key] = await query(client, expr)
                if key in ONLY_ON_TROUBLE:
                    result.healthy[key] = await query(client, healthy(expr))
        for rule in every_rule():
            name = rule.get("alert") or f"{rule['record']}{{slo={rule['labels']['slo']}}}"
            result.rules[name] = await query(client, str(rule["expr"]))
            if "record" in rule:
                recorded = f'{rule["record"]}{{slo="{rule["labels"]["slo"]}"}}'
                result.recorded[name] = await query(client, recorded)
            if "alert" in rule:
                text = signal(promql_parser.parse(str(rule["expr"])))
                result.signal_queries[rule["alert"]] = text
                result.signals[rule["alert"]] = await query(client, text)
                if rule["alert"] in ALERTS_ONLY_ON_TROUBLE:
                    result.healthy[rule["alert"]] = await query(client, healthy(text))
        result.alerts = (await api(client, "alerts"))["alerts"]
    return result


@pytest.fixture(scope="module")
async def evaluated(
    template_database: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Evaluated]:
    load_this_checkout()
    name = f"rf_test_{uuid4().hex[:12]}"
    admin = await asyncpg.connect(ADMIN_DSN)
    await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
    tmp = tmp_path_factory.mktemp("prom")
    settings = Settings(
        kafka=KafkaSettings(prefix=f"t{uuid4().hex[:10]}.", partitions=2),
        db=DatabaseSettings(dsn=with_database(ADMIN_DSN, name)),
        storage=StorageSettings(uri=(tmp / "objects").as_uri()),
        http=HttpSettings(port=free_port()),
        auth=AuthSettings(hs256_secret=SecretStr(TEST_AUTH_SECRET)),
    )
    conn = await db.connect(settings.db.dsn.get_secret_value())
    try:
        started = time.time()
        with service_processes(settings, tmp / "logs") as services:
            # Counted from the first scrape on: what happened before it, rate() never sees.
            addresses = {s.ops_url.removeprefix("http://") for s in services.running}
            async with httpx.AsyncClient(timeout=30) as client:

                async def scraped() -> bool:
                    return await _scraped_after(client, addresses, started)

                await wait_for(scraped, within=60, what="every process scraped once")
            await _run_jobs(services, settings, conn)
            yield await _evaluate(services, settings, started)
    finally:
        await conn.close()
        await delete_prefixed_topics(settings.kafka)
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


# --- what each panel means to show ------------------------------------------


def values(series: Series, label: str) -> dict[str, float]:
    """Label value -> the largest sample with it (several runs may be scraped)."""
    out: dict[str, float] = {}
    for s in series:
        key = s["metric"].get(label, "")
        out[key] = max(out.get(key, -math.inf), float(s["value"][1]))
    return out


def positive(series: Series, label: str, wanted: set[str]) -> None:
    got = values(series, label)
    assert {k for k, v in got.items() if v > 0} >= wanted, got


def finite(series: Series, label: str, wanted: set[str]) -> None:
    got = values(series, label)
    assert {k for k, v in got.items() if math.isfinite(v) and v >= 0} >= wanted, got


OUR_GROUP_SERVICES = set(SERVICES)
PIPELINE_STATES = {"received", "validating", "awaiting_confirmation", "importing", "archiving"}
OUTCOMES = {"completed", "cancelled", "failed"}
STAGES = {"validating", "importing", "archiving"}
CONSUMERS = {"validator", "importer", "archiver", "notifier"}
SLOS = {"file_check_latency", "job_success", "email_delivery"}


def _jobs_by_state(s: Series, e: Evaluated) -> None:
    finite(s, "state", PIPELINE_STATES)
    assert values(s, "state")["archiving"] >= 1  # the held job


def _oldest_waiting(s: Series, e: Evaluated) -> None:
    finite(s, "state", PIPELINE_STATES | {"archive_held"})
    assert values(s, "state")["archive_held"] > 0


def _lag(s: Series, e: Evaluated) -> None:
    ours = {x["metric"]["group"] for x in s if x["metric"]["group"].startswith(e.prefix)}
    # <prefix>rosterflow.<service>.<event>
    assert {g.rsplit(".", 2)[-2] for g in ours} == OUR_GROUP_SERVICES, ours


def _up(s: Series, e: Evaluated) -> None:
    ours = {
        x["metric"]["instance"]: x for x in s if x["metric"]["instance"] in e.addresses.values()
    }
    for service, address in e.addresses.items():
        assert ours[address]["metric"]["job"] == f"rosterflow-{service}"
        assert ours[address]["value"][1] == "1"


def _slo_ratio(s: Series, e: Evaluated) -> None:
    got = values(s, "slo")
    assert set(got) == SLOS, got
    assert all(0 <= v <= 1 for v in got.values()), got


def _slo_burn(s: Series, e: Evaluated) -> None:
    got = values(s, "slo")
    assert set(got) == SLOS, got
    assert all(0 <= v <= 100 for v in got.values()), got


def _slo_left(s: Series, e: Evaluated) -> None:
    got = values(s, "slo")
    assert set(got) == SLOS, got
    assert all(v <= 1 for v in got.values()), got


Check = Callable[[Series, Evaluated], None]
PANELS: dict[tuple[str, str], Check] = {
    ("Jobs by state", "A"): _jobs_by_state,
    ("Oldest job waiting, by state", "A"): _oldest_waiting,
    ("Jobs finished per minute, by outcome", "A"): lambda s, e: positive(s, "outcome", OUTCOMES),
    ("Messages processed per second, by service", "A"): (
        lambda s, e: positive(s, "app_name", CONSUMERS)
    ),
    ("Rows per second", "A"): lambda s, e: positive(s, "result", {"valid", "invalid"}),
    ("Rows per second", "B"): lambda s, e: positive(s, "change", {"created"}),
    ("Rows per second", "C"): lambda s, e: positive(s, "", {""}),
    ("Rows skipped, by reason", "A"): lambda s, e: positive(
        s, "reason", {"identity_bad_check_digit"}
    ),
    ("Stage duration p50 / p95 / p99", "A"): lambda s, e: finite(s, "state", STAGES),
    ("Stage duration p50 / p95 / p99", "B"): lambda s, e: finite(s, "state", STAGES),
    ("Stage duration p50 / p95 / p99", "C"): lambda s, e: finite(s, "state", STAGES),
    ("End-to-end job duration p50 / p95", "A"): lambda s, e: finite(s, "outcome", OUTCOMES),
    ("End-to-end job duration p50 / p95", "B"): lambda s, e: finite(s, "outcome", OUTCOMES),
    ("Handler duration p95, by service", "A"): lambda s, e: finite(s, "app_name", CONSUMERS),
    ("Consumer lag, by group", "A"): _lag,
    ("Failed jobs and dead letters", "A"): lambda s, e: positive(s, "", {""}),
    ("Failed jobs and dead letters", "B"): (
        lambda s, e: positive(s, "topic", {IMPORT_CONFIRMED.name})
    ),
    ("Emails, by result", "A"): lambda s, e: positive(s, "result", {"sent"}),
    ("Services up", "A"): _up,
    ("SLO: share of bad events, 1 h window", "A"): _slo_ratio,
    ("SLO: error budget burn rate, 1 h and 6 h", "A"): _slo_burn,
    ("SLO: error budget burn rate, 1 h and 6 h", "B"): _slo_burn,
    ("SLO: error budget left, 30 days", "A"): _slo_left,
}
# Shows only what goes wrong: a healthy run acknowledges every message, so the
# series it selects do not exist; the same query over acknowledged messages must.
ONLY_ON_TROUBLE = {("Failed jobs and dead letters", "C")}
ALERTS_ONLY_ON_TROUBLE = {"RosterflowHandlerErrors"}


def healthy(expr: str) -> str:
    assert 'status!="acked"' in expr, expr
    return expr.replace('status!="acked"', 'status="acked"')


def _alert_lag(s: Series, e: Evaluated) -> None:
    _lag(s, e)


def _stuck(s: Series, e: Evaluated) -> None:
    finite(s, "state", {"received", "validating", "importing", "archiving"})
    assert "awaiting_confirmation" not in values(s, "state")  # waits for a person


def _failure_rate(s: Series, e: Evaluated) -> None:
    assert len(s) == 1, s
    assert float(s[0]["value"][1]) > 0  # the failed job among those that ended


def _dead_letters(s: Series, e: Evaluated) -> None:
    got = {(x["metric"]["topic"], x["metric"]["service"]): float(x["value"][1]) for x in s}
    assert got[(IMPORT_CONFIRMED.name, "importer")] >= 1, got


def _one_series(s: Series, e: Evaluated) -> None:
    assert len(s) == 1, s
    assert math.isfinite(float(s[0]["value"][1]))


ALERT_SIGNALS: dict[str, Check] = {
    "RosterflowServiceDown": _up,
    "RosterflowConsumerLagGrowing": _alert_lag,
    "RosterflowJobStuckInStage": _stuck,
    "RosterflowJobFailureRate": _failure_rate,
    "RosterflowDeadLetters": _dead_letters,
    "RosterflowSmtpFailing": _one_series,
    "RosterflowEmailsUndelivered": lambda s, e: finite(s, "result", {"refused", "abandoned"}),
    "RosterflowMetricsIncomplete": lambda s, e: finite(s, "source", {"database", "broker"}),
    # Each consuming service reports 0 (not halted) and its give-ups from zero.
    "RosterflowConsumerHalted": lambda s, e: finite(s, "service", CONSUMERS),
    "RosterflowStageAttemptsExhausted": lambda s, e: finite(s, "service", CONSUMERS),
    "RosterflowErrorBudgetBurnFast": _slo_ratio,
    "RosterflowErrorBudgetBurnSlow": _slo_ratio,
}
LEGEND_LABEL = re.compile(r"\{\{\s*(\w+)\s*\}\}")
ANNOTATION_LABEL = re.compile(r"\$labels\.(\w+)")


def test_every_panel_query_returns_the_series_it_shows(evaluated: Evaluated) -> None:
    targets = {(p["title"], t["refId"]): t for p in _panels() for t in p["targets"]}
    assert set(targets) == set(PANELS) | ONLY_ON_TROUBLE, "a panel query without its check"
    for key, check in PANELS.items():
        series = evaluated.panels[key]
        assert series, f"{key}: no series"
        for label in LEGEND_LABEL.findall(targets[key].get("legendFormat", "")):
            assert all(s["metric"].get(label) for s in series), (key, label, series)
        check(series, evaluated)


def test_the_trouble_panels_select_the_pipeline_s_messages(evaluated: Evaluated) -> None:
    """The same query over acknowledged messages shows every consumer of the run."""
    for key in ONLY_ON_TROUBLE:
        finite(evaluated.healthy[key], "app_name", CONSUMERS)


def test_every_alert_watches_the_series_its_annotations_name(evaluated: Evaluated) -> None:
    rules = {r["alert"]: r for r in every_rule() if "alert" in r}
    assert set(rules) == set(ALERT_SIGNALS) | ALERTS_ONLY_ON_TROUBLE
    for alert, check in ALERT_SIGNALS.items():
        series = evaluated.signals[alert]
        assert series, f"{alert}: {evaluated.signal_queries[alert]} returned nothing"
        text = " ".join(str(v) for v in rules[alert]["annotations"].values())
        for label in ANNOTATION_LABEL.findall(text):
            assert all(s["metric"].get(label) for s in series), (alert, label, series)
        check(series, evaluated)
    for alert in ALERTS_ONLY_ON_TROUBLE:
        finite(evaluated.healthy[alert], "app_name", CONSUMERS)


def test_the_dead_letter_alert_fires_and_no_running_service_is_down(evaluated: Evaluated) -> None:
    _dead_letters(evaluated.rules["RosterflowDeadLetters"], evaluated)
    firing = [
        a
        for a in evaluated.alerts
        if a["labels"]["alertname"] == "RosterflowDeadLetters"
        and a["labels"]["topic"] == IMPORT_CONFIRMED.name
        and a["state"] == "firing"
    ]
    assert firing, evaluated.alerts
    assert firing[0]["annotations"]["runbook_url"] == "docs/runbook.md#rosterflowdeadletters"
    down = {s["metric"]["instance"] for s in evaluated.rules["RosterflowServiceDown"]}
    assert not down & set(evaluated.addresses.values())


def test_every_recording_rule_records_its_objective(evaluated: Evaluated) -> None:
    records = [r for r in every_rule() if "record" in r]
    assert len(records) == 8 * len(SLOS)
    for rule in records:
        name = f"{rule['record']}{{slo={rule['labels']['slo']}}}"
        (computed,) = evaluated.rules[name]
        assert 0 <= float(computed["value"][1]) <= 1, (name, computed)
        (series,) = evaluated.recorded[name]
        assert series["metric"] == {"__name__": rule["record"], "slo": rule["labels"]["slo"]}
        assert 0 <= float(series["value"][1]) <= 1, (name, series)
    # What Prometheus recorded from them, under the recorded names.
    failed = evaluated.panels[("SLO: share of bad events, 1 h window", "A")]
    assert values(failed, "slo")["job_success"] > 0  # the failed job
