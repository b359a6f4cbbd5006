"""create_app: the importer's only wiring."""

from __future__ import annotations

from faststream import FastStream

from rosterflow.runtime import Runtime
from rosterflow.service import stream_app
from rosterflow.settings import Settings
from services.importer import handlers

SERVICE = handlers.SERVICE


def create_app(settings: Settings) -> FastStream:
    rt = Runtime(settings, SERVICE)
    handlers.register(rt)
    rt.cancellations.subscribe(rt.broker, settings.kafka)
    return stream_app(rt)
