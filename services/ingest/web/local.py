"""Local use of the wizard (`make wizard`, `make demo`): settings and a sign-in link.

Here the scripts play the journal platform: they sign the demo
administrator's token with the local secret.
"""

from __future__ import annotations

import os
from uuid import UUID

from pydantic import SecretStr

from rosterflow.settings import AuthSettings, PlatformSettings, Settings
from rosterflow.storage import ObjectStore
from rosterflow.testing import TEST_AUTH_SECRET, mint_token
from services.ingest.web.store import sign_in_link


def wizard_settings() -> Settings:
    """The local settings, signing the demo's tokens, with the email's link on the wizard."""
    settings = Settings()
    if settings.auth.hs256_secret is None:
        # Local use plays the journal platform: it configures the secret and signs tokens.
        settings.auth = AuthSettings(hs256_secret=SecretStr(TEST_AUTH_SECRET))
    if "ROSTERFLOW_PLATFORM_BASE_URL" not in os.environ:
        settings.platform = PlatformSettings(
            base_url=f"http://{settings.http.host}:{settings.http.port}/ui"
        )
    return settings


def demo_link(settings: Settings, organisations: list[UUID], target: str = "") -> str:
    """A one-time sign-in link for the demo administrator of these organisations."""
    secret = settings.auth.hs256_secret
    assert secret is not None
    lifetime = settings.ui.ticket_minutes * 60
    token = mint_token(
        organisations,
        key=secret.get_secret_value(),
        audience=settings.auth.audience,
        issuer=settings.auth.issuer,
        user_id="demo-admin",
        name="Demo Administratör",
        email="demo.admin@skolhalsan.example",
        expires_in=lifetime,
    )
    store = ObjectStore.from_settings(settings.storage)
    base = f"http://{settings.http.host}:{settings.http.port}"
    return sign_in_link(base, store, token, lifetime, target)
