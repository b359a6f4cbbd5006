"""OpenTelemetry tracing across the Kafka hops; off unless an OTLP endpoint is set.

FastStream's telemetry middleware opens a span for every publish and every
consume and carries the W3C trace context in the message headers, so one
job's trace runs from the upload through every service.
"""

from __future__ import annotations

from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from rosterflow.settings import TracingSettings


def tracer_provider(settings: TracingSettings, service: str) -> TracerProvider | None:
    """A provider exporting by OTLP/HTTP, or None when tracing is off."""
    if not settings.otlp_endpoint:
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    provider = TracerProvider(
        resource=Resource.create({SERVICE_NAME: f"rosterflow-{service}"}),
        sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio)),
    )
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otlp_endpoint))
    )
    return provider
