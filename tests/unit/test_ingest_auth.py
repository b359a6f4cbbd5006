"""Token verification on its own: what a token must carry to be accepted."""

from __future__ import annotations

import time
from uuid import uuid4

import jwt
import pytest
from pydantic import SecretStr, ValidationError

from rosterflow.settings import AuthSettings
from rosterflow.testing import TEST_AUTH_SECRET, mint_token
from services.ingest.auth import TokenVerifier
from services.ingest.errors import ApiError

ORG = uuid4()
VERIFIER = TokenVerifier(AuthSettings(hs256_secret=SecretStr(TEST_AUTH_SECRET)))


def refusal(token: str) -> tuple[int, str]:
    with pytest.raises(ApiError) as refused:
        VERIFIER.verify(token)
    return refused.value.status, refused.value.code


def test_a_good_token_names_the_user_and_their_organisations() -> None:
    caller = VERIFIER.verify(mint_token([ORG], user_id="u-5", language="en"))
    assert caller.requester.user_id == "u-5"
    assert caller.requester.language == "en"
    assert caller.administers(ORG)
    assert not caller.administers(uuid4())


def test_an_unsigned_token_is_refused() -> None:
    payload = {"sub": "u", "aud": "rosterflow", "exp": int(time.time()) + 60}
    unsigned = jwt.encode(
        {**payload, "name": "n", "email": "a@b", "admin_organisations": [str(ORG)]},
        "",
        algorithm="none",
    )
    assert refusal(unsigned) == (401, "token_invalid")


def test_a_token_without_expiry_is_refused() -> None:
    token = jwt.encode(
        {"sub": "u", "aud": "rosterflow", "name": "n", "email": "a@b"},
        TEST_AUTH_SECRET,
        algorithm="HS256",
    )
    assert refusal(token) == (401, "token_invalid")


def test_a_token_without_a_valid_email_is_refused() -> None:
    assert refusal(mint_token([ORG], email="nobody")) == (401, "token_claims_invalid")


def test_a_malformed_organisation_id_is_refused() -> None:
    token = mint_token([], admin_organisations=["not-a-uuid"])
    assert refusal(token) == (401, "token_claims_invalid")


def test_a_little_clock_skew_is_tolerated() -> None:
    assert VERIFIER.verify(mint_token([ORG], expires_in=-10)).administers(ORG)
    assert refusal(mint_token([ORG], expires_in=-120)) == (401, "token_expired")


def test_a_user_who_administers_nothing_is_forbidden() -> None:
    assert refusal(mint_token([])) == (403, "not_an_administrator")


@pytest.mark.parametrize("secret", ["", "abc", "x" * 31])
def test_a_weak_hs256_secret_refuses_to_start(secret: str) -> None:
    with pytest.raises(ValidationError, match="at least 32 bytes"):
        AuthSettings(hs256_secret=SecretStr(secret))


def test_a_weak_secret_in_the_environment_refuses_to_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ROSTERFLOW_AUTH_HS256_SECRET", "")
    with pytest.raises(ValidationError):
        AuthSettings()


@pytest.mark.parametrize(
    "token",
    [
        "",
        "not-a-jwt",
        "a.b.c",
        jwt.encode({"sub": "u"}, "another-secret-of-thirty-two-bytes!!", algorithm="HS256"),
        # A token whose header is not JSON.
        "eyJhbGciOi.e30.c2ln",
    ],
)
def test_an_invalid_token_is_always_401(token: str) -> None:
    assert refusal(token)[0] == 401
