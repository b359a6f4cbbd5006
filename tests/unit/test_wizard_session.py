"""The wizard's session cookie, its CSRF token, where a sign-in may land, the words."""

from __future__ import annotations

import time
from uuid import uuid4

import pytest
from fastapi import Request, Response
from pydantic import SecretStr

from rosterflow import events
from rosterflow.settings import UiSettings
from services.ingest.auth import Caller
from services.ingest.web import i18n
from services.ingest.web.session import (
    COOKIE,
    CsrfRefused,
    NotSignedIn,
    Sessions,
    check_csrf,
)
from services.ingest.web.signin import safe_target


def caller() -> Caller:
    requester = events.Requester(
        user_id="u-1", name="Karin Admin", email="karin@skolhalsan.example"
    )
    return Caller(requester, frozenset({uuid4(), uuid4()}))


def request_with(cookie: str | None) -> Request:
    headers = [] if cookie is None else [(b"cookie", f"{COOKIE}={cookie}".encode())]
    return Request({"type": "http", "headers": headers})


def cookie_of(sessions: Sessions, session_caller: Caller) -> tuple[str, str]:
    response = Response()
    sessions.write(response, sessions.start(session_caller))
    header = response.headers["set-cookie"]
    return header.split(";")[0].split("=", 1)[1], header


SETTINGS = UiSettings(
    session_secret=SecretStr("a-secret-for-the-tests-0123456789abcdef"), session_minutes=5
)


def test_a_session_reads_back_who_signed_in_and_the_cookie_is_locked_down() -> None:
    sessions = Sessions(SETTINGS)
    who = caller()
    value, header = cookie_of(sessions, who)
    session = sessions.read(request_with(value))
    assert session.caller == who
    assert session.language == "sv"
    lowered = header.lower()
    assert "httponly" in lowered
    assert "samesite=strict" in lowered
    assert "max-age=300" in lowered
    assert "path=/ui" in lowered


@pytest.mark.parametrize(
    "tamper",
    [
        lambda v: v[:-2] + ("AA" if not v.endswith("AA") else "BB"),
        lambda v: "x" + v,
        lambda v: "",
    ],
)
def test_a_tampered_or_missing_cookie_is_no_session(tamper: object) -> None:
    sessions = Sessions(SETTINGS)
    value, _ = cookie_of(sessions, caller())
    with pytest.raises(NotSignedIn):
        sessions.read(request_with(tamper(value)))  # type: ignore[operator]
    with pytest.raises(NotSignedIn):
        sessions.read(request_with(None))


def test_another_instances_secret_or_an_old_cookie_is_no_session(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    value, _ = cookie_of(Sessions(SETTINGS), caller())
    with pytest.raises(NotSignedIn):
        Sessions(
            UiSettings(session_secret=SecretStr("another-secret-for-the-tests-0123456789"))
        ).read(request_with(value))
    later = time.time() + 6 * 60
    monkeypatch.setattr(time, "time", lambda: later)
    with pytest.raises(NotSignedIn):
        Sessions(SETTINGS).read(request_with(value))


def test_a_short_session_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        UiSettings(session_secret=SecretStr("change-me"))


def test_the_csrf_token_must_be_the_sessions_own() -> None:
    session = Sessions(SETTINGS).start(caller())
    check_csrf(session, session.csrf)
    for offered in (None, "", "forged", session.csrf + "x"):
        with pytest.raises(CsrfRefused):
            check_csrf(session, offered)


def test_the_language_switch_keeps_who_and_the_csrf_token() -> None:
    session = Sessions(SETTINGS).start(caller())
    english = session.with_language(events.Language.EN)
    assert english.language == "en"
    assert english.csrf == session.csrf
    assert english.caller.organisations == session.caller.organisations


@pytest.mark.parametrize(
    ("target", "landing"),
    [
        ("/ui/imports/3f2c", "/ui/imports/3f2c"),
        ("https://evil.example/ui/", "/ui/"),
        ("//evil.example/ui/", "/ui/"),
        ("/other", "/ui/"),
        (None, "/ui/"),
    ],
)
def test_a_sign_in_lands_only_on_the_wizards_own_pages(target: str | None, landing: str) -> None:
    assert safe_target(target) == landing


def test_every_word_exists_in_both_languages_and_reasons_read_as_the_validators() -> None:
    for key in ("step1", "state_completed", "confirm_import"):
        assert i18n.text("sv", key, valid=3, unit="U") != i18n.text("en", key, valid=3, unit="U")
    assert i18n.reason("sv", "given_name_missing") == "Förnamn saknas"
    assert i18n.reason("en", "no_such_code") == "no_such_code"
