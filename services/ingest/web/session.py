"""The wizard's session: a signed, HttpOnly, SameSite=Strict cookie.

The platform's token is verified once, at launch, exactly as the API verifies
it (auth.TokenVerifier); the session then carries who the user is, the
organisations they administer, their language and a CSRF token for forms.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from typing import Any
from uuid import UUID

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from rosterflow import events
from rosterflow.settings import UiSettings
from services.ingest.auth import Caller

COOKIE = "rosterflow_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


class NotSignedIn(Exception):
    """No valid session: the user has to come in through the platform again."""


class CsrfRefused(Exception):
    """A form or request without the signed-in user's CSRF token."""


@dataclass(frozen=True)
class Session:
    caller: Caller
    csrf: str

    @property
    def language(self) -> str:
        return self.caller.requester.language.value

    def with_language(self, language: events.Language) -> Session:
        requester = self.caller.requester.model_copy(update={"language": language})
        return replace(self, caller=Caller(requester, self.caller.organisations))

    def organisations(self) -> list[UUID]:
        return sorted(self.caller.organisations, key=str)


class Sessions:
    def __init__(self, settings: UiSettings) -> None:
        secret = (
            settings.session_secret.get_secret_value()
            if settings.session_secret is not None
            else secrets.token_urlsafe(32)
        )
        self._signer = URLSafeTimedSerializer(secret, salt="rosterflow-ui-session")
        self._settings = settings
        self.max_age = settings.session_minutes * 60

    def start(self, caller: Caller) -> Session:
        return Session(caller, secrets.token_urlsafe(24))

    def read(self, request: Request) -> Session:
        raw = request.cookies.get(COOKIE)
        if not raw:
            raise NotSignedIn
        try:
            data: dict[str, Any] = self._signer.loads(raw, max_age=self.max_age)
            requester = events.Requester(
                user_id=data["u"], name=data["n"], email=data["e"], language=data["l"]
            )
            organisations = frozenset(UUID(o) for o in data["o"])
            return Session(Caller(requester, organisations), str(data["c"]))
        except (BadSignature, KeyError, TypeError, ValueError) as exc:
            raise NotSignedIn from exc

    def write(self, response: Response, session: Session) -> None:
        who = session.caller.requester
        value = self._signer.dumps(
            {
                "u": who.user_id,
                "n": who.name,
                "e": who.email,
                "l": who.language.value,
                "o": [str(o) for o in session.organisations()],
                "c": session.csrf,
            }
        )
        response.set_cookie(
            COOKIE,
            value,
            max_age=self.max_age,
            path="/ui",
            httponly=True,
            samesite="strict",
            secure=self._settings.secure_cookie,
        )

    @staticmethod
    def end(response: Response) -> None:
        response.delete_cookie(COOKIE, path="/ui")


def check_csrf(session: Session, offered: str | None) -> None:
    if not offered or not secrets.compare_digest(offered, session.csrf):
        raise CsrfRefused
