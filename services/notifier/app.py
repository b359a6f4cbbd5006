"""create_app: the notifier's only wiring."""

from __future__ import annotations

from faststream import FastStream

from rosterflow.service import stream_app
from rosterflow.settings import Settings
from services.notifier import handlers, smtp
from services.notifier.retry import RetryLoop

SERVICE = handlers.SERVICE


def create_app(settings: Settings) -> FastStream:
    # One set of kept SMTP connections for the handler and the retry loop.
    relay = smtp.Relay(settings.smtp)
    app = stream_app(
        settings,
        SERVICE,
        lambda rt: handlers.register(rt, relay),
        cancellable=False,
        background=lambda rt: RetryLoop(rt, relay),
    )
    app.after_shutdown(relay.close)
    return app
