"""An upload the validator cannot finish reading before it heard a cancel (tests only)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import pyarrow as pa
import pytest

from rosterflow.runtime import Runtime


@dataclass
class GatedStorage:
    """Streams of the uploaded file that stop at ``gate`` bytes until the validator heard a cancel.

    The validator then cannot finish before the cancel arrives, however fast it is.
    """

    gate: int
    heard: threading.Event = field(default_factory=threading.Event)
    waiting: threading.Event = field(default_factory=threading.Event)
    streams: list[GatedStream] = field(default_factory=list)

    def install(self, validator: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
        """The validator's uploads read through the gate, opened when it hears a cancel."""
        opened = validator.store.open_input

        def open_gated(key: str) -> pa.NativeFile:
            stream = GatedStream(opened(key), self)
            self.streams.append(stream)
            return pa.PythonFile(stream, mode="r")

        monkeypatch.setattr(validator.store, "open_input", open_gated)
        heard = validator.cancellations.mark

        def mark(job_id: object) -> None:
            heard(job_id)  # type: ignore[arg-type]
            self.heard.set()

        monkeypatch.setattr(validator.cancellations, "mark", mark)


class GatedStream:
    def __init__(self, source: pa.NativeFile, storage: GatedStorage) -> None:
        self._source = source
        self._storage = storage
        self.served = 0
        self.closed = False

    def read(self, size: int = -1) -> bytes:
        if self.served >= self._storage.gate and not self._storage.heard.is_set():
            self._storage.waiting.set()
            # Bounded: a validator that never hears the cancel fails the test below.
            self._storage.heard.wait(timeout=60)
        data = self._source.read() if size < 0 else self._source.read(size)
        self.served += len(data)
        return bytes(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        self.closed = True
        self._source.close()
