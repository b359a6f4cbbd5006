"""The broker a service talks through, and the names of its topics and groups."""

from __future__ import annotations

import logging
from typing import Any

from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from opentelemetry.trace import TracerProvider
from prometheus_client import REGISTRY

from rosterflow.settings import KafkaSettings
from rosterflow.topics import TopicSpec


def topic_name(settings: KafkaSettings, spec: TopicSpec) -> str:
    return settings.prefix + spec.name


def group_name(settings: KafkaSettings, service: str, spec: TopicSpec) -> str:
    # One group per service and topic: a subscriber's consumer joins and
    # rebalances alone instead of disturbing the service's other subscribers.
    return f"{settings.prefix}rosterflow.{service}.{spec.event.kind}"


def create_broker(
    settings: KafkaSettings, service: str, tracer_provider: TracerProvider | None = None
) -> KafkaBroker:
    # Outermost first: the consume span encloses the metrics and the handler,
    # so what the handler publishes carries the span's trace context.
    middlewares: list[Any] = []
    if tracer_provider is not None:
        middlewares.append(
            KafkaTelemetryMiddleware(
                tracer_provider=tracer_provider, include_messages_counters=False
            )
        )
    middlewares.append(KafkaPrometheusMiddleware(registry=REGISTRY, app_name=service))
    return KafkaBroker(
        settings.bootstrap_servers,
        client_id=f"{settings.client_id}-{service}",
        acks="all",
        enable_idempotence=True,
        logger=logging.getLogger(f"rosterflow.{service}.kafka"),
        # FastStream's own "Received" and "Processed" lines for every message:
        # debug only. The consume loop logs "event handled" with the job, the
        # event and the duration, and any failure at warning or above.
        log_level=logging.DEBUG,
        # No dependency injection per message: every subscriber takes the
        # message itself (see ``the_message``) and parses its body with the
        # event's model. FastDepends resolved that one argument in a worker
        # thread, a thread hand-off for every message.
        apply_types=False,
        middlewares=middlewares,
    )


async def the_message(message: KafkaMessage) -> KafkaMessage:
    """The subscribers' decoder: the message as it came, for the handler to parse.

    FastStream's own decoder would parse the JSON body into a dict that no
    handler uses (each validates the raw bytes with its pydantic model).
    """
    return message
