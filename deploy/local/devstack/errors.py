"""The one error type of the local stack: a failure to explain to the engineer, with logs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class StackError(Exception):
    """A failure explained for the engineer running the script; `logs` are tailed after it."""

    def __init__(self, message: str, logs: Sequence[Path] = ()) -> None:
        super().__init__(message)
        self.logs = list(logs)
