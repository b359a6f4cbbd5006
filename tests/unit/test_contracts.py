from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest

from rosterflow.contracts import SCHEMAS_DIR, drift
from rosterflow.topics import ALL_TOPICS, CANCELLATIONS, TopicSpec

TOPIC_IDS = [spec.name for spec in ALL_TOPICS]


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def schema_of(spec: TopicSpec) -> dict[str, Any]:
    schema: dict[str, Any] = load(SCHEMAS_DIR / f"{spec.event.kind}.v1.schema.json")
    return schema


def example_of(spec: TopicSpec) -> dict[str, Any]:
    example: dict[str, Any] = load(SCHEMAS_DIR / "examples" / f"{spec.event.kind}.json")
    return example


def validator(spec: TopicSpec) -> Any:
    schema = schema_of(spec)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def channels() -> dict[str, Any]:
    found: dict[str, Any] = load(SCHEMAS_DIR / "asyncapi.json")["channels"]
    return found


def test_schemas_directory_matches_the_models() -> None:
    assert drift() == []


@pytest.mark.parametrize("spec", ALL_TOPICS, ids=TOPIC_IDS)
def test_every_topic_has_a_draft_2020_12_schema(spec: TopicSpec) -> None:
    schema = schema_of(spec)

    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("spec", ALL_TOPICS, ids=TOPIC_IDS)
def test_every_example_validates_and_parses_back_with_its_model(spec: TopicSpec) -> None:
    example = example_of(spec)

    validator(spec).validate(example)
    parsed = spec.event.model_validate(example)
    assert json.loads(parsed.model_dump_json()) == example


def test_every_example_file_belongs_to_a_topic() -> None:
    kinds = {spec.event.kind for spec in ALL_TOPICS}

    assert {path.stem for path in (SCHEMAS_DIR / "examples").glob("*.json")} == kinds


@pytest.mark.parametrize("spec", ALL_TOPICS, ids=TOPIC_IDS)
def test_an_example_without_its_job_id_fails_validation(spec: TopicSpec) -> None:
    example = example_of(spec)
    del example["job_id"]

    errors = list(validator(spec).iter_errors(example))

    if spec.event.kind == "dead_letter":
        # A dead letter may hold bytes from which no job id could be read.
        assert errors == []
    else:
        assert [e.validator for e in errors] == ["required"]
        assert "job_id" in errors[0].message


@pytest.mark.parametrize(
    ("kind", "change"),
    [
        ("job_finished", {"outcome": "exploded"}),
        ("job_finished", {"archived": -1}),
        ("upload_requested", {"unexpected": True}),
        ("job_validated", {"schema_version": 2}),
    ],
)
def test_broken_examples_fail_validation(kind: str, change: dict[str, Any]) -> None:
    spec = next(s for s in ALL_TOPICS if s.event.kind == kind)
    example = {**example_of(spec), **change}

    assert not validator(spec).is_valid(example)


def test_school_year_pattern_is_in_the_schema() -> None:
    spec = next(s for s in ALL_TOPICS if s.event.kind == "upload_requested")
    example = example_of(spec)
    example["request"]["school_year"] = "HT2026"

    assert not validator(spec).is_valid(example)


@pytest.mark.parametrize("spec", ALL_TOPICS, ids=TOPIC_IDS)
def test_every_topic_has_an_asyncapi_channel_carrying_its_event(spec: TopicSpec) -> None:
    by_address = {channel["address"]: channel for channel in channels().values()}

    channel = by_address[spec.name]
    assert list(channel["messages"]) == [spec.event.__name__]
    assert channel["bindings"]["kafka"]["topic"] == spec.name
    assert channel["x-producers"] == list(spec.producers)
    assert channel["x-consumers"] == list(spec.consumers)


def test_asyncapi_has_no_channel_without_a_topic() -> None:
    assert {c["address"] for c in channels().values()} == set(TOPIC_IDS)


def test_only_the_cancellation_topic_is_compacted() -> None:
    policies = {
        channel["address"]: channel["bindings"]["kafka"]["topicConfiguration"]["cleanup.policy"]
        for channel in channels().values()
    }

    assert CANCELLATIONS.compacted
    assert policies[CANCELLATIONS.name] == ["compact"]
    assert [name for name, policy in policies.items() if "compact" in policy] == [
        CANCELLATIONS.name
    ]
    assert [spec.name for spec in ALL_TOPICS if spec.compacted] == [CANCELLATIONS.name]
