"""A signed S3 request with the standard library: AWS Signature Version 4, path-style.

Enough for the stack to ask its S3 server whether the bucket exists and to create it
(HEAD and PUT on /<bucket>) with the stack's credentials, before any venv exists.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
from datetime import UTC, datetime
from urllib.parse import quote

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def signed_headers(
    method: str,
    host: str,
    path: str,
    *,
    access_key: str,
    secret_key: str,
    region: str,
    body: bytes = b"",
    now: datetime | None = None,
) -> dict[str, str]:
    """The headers that sign `method host path` (no query string) for the s3 service."""
    moment = now or datetime.now(UTC)
    amz_date = moment.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    payload = hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
    headers = {"host": host, "x-amz-content-sha256": payload, "x-amz-date": amz_date}
    names = sorted(headers)
    canonical = "\n".join(
        [
            method,
            quote(path, safe="/-_.~"),
            "",
            *(f"{name}:{headers[name]}" for name in names),
            "",
            ";".join(names),
            payload,
        ]
    )
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = _hmac(("AWS4" + secret_key).encode(), day)
    for part in (region, "s3", "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return headers


def request(
    method: str,
    host: str,
    port: int,
    path: str,
    *,
    access_key: str,
    secret_key: str,
    region: str,
    timeout: float = 5.0,
) -> tuple[int, bytes]:
    """Send a signed, bodiless request over plain HTTP; the status and the body."""
    headers = signed_headers(
        method,
        f"{host}:{port}",
        path,
        access_key=access_key,
        secret_key=secret_key,
        region=region,
    )
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request(method, quote(path, safe="/-_.~"), headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()
