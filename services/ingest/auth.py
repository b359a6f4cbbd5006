"""Bearer tokens from the journal platform (JWT, HS256 or RS256).

Claims: ``sub`` (user id), ``name``, ``email``, ``language`` (``sv``/``en``,
Swedish by default), ``admin_organisations`` (ids of the organisations the
user administers), ``exp`` and ``aud`` (always required) and ``iss`` (checked
when ``ROSTERFLOW_AUTH_ISSUER`` is set).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID

import jwt
import jwt.types
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rosterflow import events
from rosterflow.settings import AuthSettings
from services.ingest.errors import ApiError

log = logging.getLogger(__name__)


class Claims(BaseModel):
    model_config = ConfigDict(extra="ignore")

    sub: str = Field(min_length=1, max_length=200)
    name: str = Field(min_length=1, max_length=200)
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$", max_length=320)
    language: events.Language = events.Language.SV
    admin_organisations: list[UUID] = Field(default_factory=list, max_length=10_000)


@dataclass(frozen=True)
class Caller:
    """Who is asking, and which organisations they administer."""

    requester: events.Requester
    organisations: frozenset[UUID]

    def administers(self, organisation_id: UUID) -> bool:
        return organisation_id in self.organisations


def _unauthenticated(code: str, message: str) -> ApiError:
    return ApiError(401, code, message, **{"WWW-Authenticate": "Bearer"})


class TokenVerifier:
    def __init__(self, settings: AuthSettings) -> None:
        self._settings = settings
        self._keys: dict[str, Any] = {}
        if settings.hs256_secret is not None:
            self._keys["HS256"] = settings.hs256_secret.get_secret_value().encode()
        if settings.rs256_public_key_file is not None:
            self._keys["RS256"] = settings.rs256_public_key_file.read_bytes()
        if not self._keys:
            log.warning(
                "no token key configured (ROSTERFLOW_AUTH_HS256_SECRET or "
                "ROSTERFLOW_AUTH_RS256_PUBLIC_KEY_FILE): every request will be refused"
            )

    def verify(self, token: str) -> Caller:
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
        except jwt.PyJWTError as exc:
            raise _unauthenticated("token_invalid", "The bearer token is not a JWT.") from exc
        key = self._keys.get(str(algorithm))
        if key is None:
            raise _unauthenticated("token_invalid", "The token's algorithm is not accepted.")
        required = ["exp", "aud", "sub"]
        if self._settings.issuer is not None:
            required.append("iss")
        options: jwt.types.Options = {"require": required}
        try:
            payload = jwt.decode(
                token,
                key,
                algorithms=[str(algorithm)],
                audience=self._settings.audience,
                issuer=self._settings.issuer,
                leeway=self._settings.leeway_seconds,
                options=options,
            )
        except jwt.ExpiredSignatureError as exc:
            raise _unauthenticated("token_expired", "The bearer token has expired.") from exc
        except jwt.InvalidAudienceError as exc:
            raise _unauthenticated(
                "token_wrong_audience", "The bearer token is not meant for rosterflow."
            ) from exc
        except jwt.InvalidIssuerError as exc:
            raise _unauthenticated(
                "token_wrong_issuer", "The bearer token has another issuer."
            ) from exc
        except jwt.PyJWTError as exc:
            # Any other refusal (a malformed key or token, InvalidKeyError…) is
            # the token's fault as far as the caller is told: 401, never 500.
            raise _unauthenticated("token_invalid", "The bearer token is not valid.") from exc
        try:
            claims = Claims.model_validate(payload)
        except ValidationError as exc:
            raise _unauthenticated(
                "token_claims_invalid", "The bearer token does not name a valid user."
            ) from exc
        if not claims.admin_organisations:
            raise ApiError(403, "not_an_administrator", "You administer no organisation.")
        return Caller(
            requester=events.Requester(
                user_id=claims.sub, name=claims.name, email=claims.email, language=claims.language
            ),
            organisations=frozenset(claims.admin_organisations),
        )


_bearer = HTTPBearer(auto_error=False, description="A JWT issued by the journal platform")


def caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    if credentials is None:
        raise _unauthenticated("unauthenticated", "A bearer token is required.")
    verifier: TokenVerifier = request.app.state.token_verifier
    return verifier.verify(credentials.credentials)


CallerDep = Annotated[Caller, Depends(caller)]
