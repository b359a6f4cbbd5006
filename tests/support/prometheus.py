"""The local stack's Prometheus, seen through its HTTP API."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import httpx

from rosterflow.settings import REPO_ROOT

PORT = int(os.environ.get("ROSTERFLOW_LOCAL_PROMETHEUS_PORT", "19090"))
URL = f"http://127.0.0.1:{PORT}"


def load_this_checkout() -> None:
    """Start the stack's Prometheus if needed, and make it load this checkout's rule files."""
    done = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "deploy" / "local" / "stack.py"),
            "up",
            "--only",
            "prometheus",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


async def api(client: httpx.AsyncClient, path: str, **params: str) -> Any:
    response = await client.get(f"{URL}/api/v1/{path}", params=params)
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "success", body
    return body["data"]


async def query(client: httpx.AsyncClient, expr: str) -> list[dict[str, Any]]:
    """An instant query's vector: [{"metric": {labels}, "value": [t, "v"]}]."""
    data = await api(client, "query", query=expr)
    assert data["resultType"] == "vector", data
    result: list[dict[str, Any]] = data["result"]
    return result


async def active_targets(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    data = await api(client, "targets", state="active")
    targets: list[dict[str, Any]] = data["activeTargets"]
    return targets
