"""create_app: the notifier's only wiring."""

from __future__ import annotations

from faststream import FastStream

from rosterflow.service import stream_app
from rosterflow.settings import Settings
from services.notifier import handlers
from services.notifier.retry import RetryLoop

SERVICE = handlers.SERVICE


def create_app(settings: Settings) -> FastStream:
    return stream_app(settings, SERVICE, handlers.register, cancellable=False, background=RetryLoop)
