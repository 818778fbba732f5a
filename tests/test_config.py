"""Start-up configuration: production demands its secrets by name; development needs none."""

import pytest

from ivr import create_app
from ivr.config import load_settings
from ivr.errors import ConfigError

PRODUCTION = {"IVR_ENV": "production", "IVR_TWILIO_ACCOUNT_SID": "AC" + "a" * 32,
              "IVR_TWILIO_AUTH_TOKEN": "secret", "IVR_PUBLIC_BASE_URL": "https://ivr.clinic.example/",
              "IVR_FROM_NUMBER": "+12125550100", "IVR_SECRET_KEY": "k"}


@pytest.mark.parametrize("missing", ["IVR_TWILIO_AUTH_TOKEN", "IVR_TWILIO_ACCOUNT_SID",
                                     "IVR_PUBLIC_BASE_URL", "IVR_FROM_NUMBER", "IVR_SECRET_KEY"])
def test_production_without_a_secret_stops_with_its_name(missing):
    environ = {k: v for k, v in PRODUCTION.items() if k != missing}
    with pytest.raises(ConfigError, match=f"^{missing} is required when IVR_ENV=production"):
        load_settings(environ)


def test_production_is_the_default_so_nothing_runs_unsafely_by_accident():
    with pytest.raises(ConfigError, match="IVR_TWILIO_ACCOUNT_SID is required"):
        load_settings({})


def test_complete_production_settings_load():
    settings = load_settings(PRODUCTION)
    assert (settings.carrier, settings.public_base_url) == ("twilio", "https://ivr.clinic.example")


def test_development_needs_no_secrets_and_uses_the_sandbox(tmp_path):
    settings = load_settings({"IVR_ENV": "development"}, instance_path=tmp_path)
    assert settings.carrier == "sandbox"
    assert len(settings.twilio_auth_token) == 32 and len(settings.secret_key) == 64
    # Random per instance folder, the same for every process that uses it, readable by its owner only.
    assert load_settings({"IVR_ENV": "development"}, instance_path=tmp_path).twilio_auth_token == \
        settings.twilio_auth_token
    assert load_settings({"IVR_ENV": "development"}, instance_path=tmp_path / "other").twilio_auth_token != \
        settings.twilio_auth_token
    assert (tmp_path / "development-secrets.json").stat().st_mode & 0o777 == 0o600
    assert settings.database_url == f"sqlite:///{tmp_path / 'ivr.sqlite3'}"
    assert settings.public_base_url == "http://127.0.0.1:5000"


@pytest.mark.parametrize("environ,message", [
    ({"IVR_ENV": "staging"}, "IVR_ENV must be one of"),
    ({"IVR_ENV": "development", "IVR_CARRIER": "pigeon"}, "IVR_CARRIER must be one of"),
    ({**PRODUCTION, "IVR_CARRIER": "sandbox"}, "IVR_CARRIER=sandbox cannot be used"),
    ({**PRODUCTION, "IVR_FROM_NUMBER": "212-555-0100"}, "IVR_FROM_NUMBER must be a phone number in E.164"),
    ({**PRODUCTION, "IVR_PUBLIC_BASE_URL": "ivr.clinic.example"}, "IVR_PUBLIC_BASE_URL must start with"),
    ({"IVR_ENV": "development", "IVR_PROXY_HOPS": "two"}, "IVR_PROXY_HOPS must be a whole number"),
])
def test_bad_values_are_named(environ, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(environ)


def test_create_app_refuses_to_start_without_the_auth_token(monkeypatch):
    for key, value in PRODUCTION.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("IVR_TWILIO_AUTH_TOKEN")
    with pytest.raises(ConfigError, match="IVR_TWILIO_AUTH_TOKEN"):
        create_app()
