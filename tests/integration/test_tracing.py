"""Trace context crosses the Kafka hops (real broker; spans kept in memory)."""

from __future__ import annotations

from contextlib import AsyncExitStack
from uuid import uuid4

import asyncpg
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from rosterflow import events
from rosterflow.ops import tracing
from rosterflow.runtime import Runtime
from rosterflow.settings import Settings, TracingSettings
from rosterflow.storage import upload_key
from rosterflow.testing import running, sample_roster, school_age_numbers, seed_school, wait_for
from services.ingest import handlers as ingest
from services.validator import handlers as validator


async def test_one_trace_runs_from_the_upload_through_ingest_to_the_validator(
    settings: Settings, conn: asyncpg.Connection
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    school = await seed_school(conn)
    roster = sample_roster(5, school_age_numbers())

    async with AsyncExitStack() as stack:
        runtimes = {}
        for name, register in (("ingest", ingest.register), ("validator", validator.register)):
            rt = Runtime(settings, name, tracer_provider=provider)
            register(rt)
            runtimes[name] = await stack.enter_async_context(running(rt))
        platform = runtimes["ingest"]
        job_id = uuid4()
        key = upload_key(school.organisation_id, job_id)
        written = platform.store.write_bytes(key, roster.to_csv().encode())
        await platform.publisher.publish(
            events.UploadRequested(
                job_id=job_id,
                request=events.ImportRequest(
                    organisation_id=school.organisation_id,
                    unit_id=school.unit_id,
                    school_year="2026/2027",
                ),
                file=events.StoredFile(
                    key=key, name="elever.csv", sha256=written.sha256, size_bytes=written.size_bytes
                ),
                requested_by=events.Requester(
                    user_id="u-1", name="Karin Admin", email="k@x.example"
                ),
            )
        )

        def consumed(topic_end: str) -> list[ReadableSpan]:
            return [
                s
                for s in exporter.get_finished_spans()
                if s.kind is SpanKind.CONSUMER and s.name.split(" ")[0].endswith(topic_end)
            ]

        async def validated() -> list[ReadableSpan] | None:
            return consumed("job-accepted.v1") or None

        accepted = await wait_for(validated, within=60, what="the validator's consume span")

    spans = exporter.get_finished_spans()
    uploaded = consumed("upload-requested.v1")
    assert len(uploaded) == 1
    assert len(accepted) == 1
    # The validator's span continues the trace the platform's publish started.
    trace_ids = {s.context.trace_id for s in spans}
    assert trace_ids == {uploaded[0].context.trace_id}
    # Its parent is ingest's publish of JobAccepted, made inside ingest's consume span.
    parent = accepted[0].parent
    assert parent is not None
    publish = next(s for s in spans if s.context.span_id == parent.span_id)
    assert publish.kind is SpanKind.PRODUCER
    assert publish.name.split(" ")[0].endswith("job-accepted.v1")
    assert publish.parent is not None
    assert publish.parent.span_id == uploaded[0].context.span_id


def test_tracing_is_off_unless_an_endpoint_is_set() -> None:
    assert tracing.tracer_provider(TracingSettings(), "validator") is None
    provider = tracing.tracer_provider(
        TracingSettings(otlp_endpoint="http://127.0.0.1:4318/v1/traces"), "validator"
    )
    assert isinstance(provider, TracerProvider)
    assert provider.resource.attributes["service.name"] == "rosterflow-validator"
    provider.shutdown()
