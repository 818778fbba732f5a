"""Start-up configuration: production demands its secrets by name; development needs none."""

import pytest

from ivr import create_app
from ivr.config import load_settings
from ivr.errors import ConfigError

PRODUCTION = {"IVR_ENV": "production", "IVR_TWILIO_ACCOUNT_SID": "AC" + "a" * 32,
              "IVR_TWILIO_AUTH_TOKEN": "secret", "IVR_PUBLIC_BASE_URL": "https://ivr.clinic.example/",
              "IVR_FROM_NUMBER": "+12125550100", "IVR_SECRET_KEY": "k" * 32,
              "IVR_REDIS_URL": "redis://redis.clinic.example:6379/0"}


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
    ({"IVR_ENV": "development", "IVR_PUBLIC_BASE_URL": "ivr.clinic.example"}, "IVR_PUBLIC_BASE_URL must start with"),
    ({"IVR_ENV": "development", "IVR_PROXY_HOPS": "two"}, "IVR_PROXY_HOPS must be a whole number"),
    ({"IVR_ENV": "development", "IVR_MAX_CONTENT_LENGTH": "1MB"},
     r"IVR_MAX_CONTENT_LENGTH must be a whole number \(bytes\), not '1MB'"),
    ({"IVR_ENV": "development", "IVR_MAX_CONTENT_LENGTH": "-1"}, "IVR_MAX_CONTENT_LENGTH must not be negative"),
    ({"IVR_ENV": "development", "IVR_RECONCILE_SECONDS": "0"}, "IVR_RECONCILE_SECONDS must be a whole number of seconds, 1 or more"),
    ({"IVR_ENV": "development", "IVR_STALE_CALL_SECONDS": "an hour"}, "IVR_STALE_CALL_SECONDS must be a whole number"),
    ({"IVR_ENV": "development", "IVR_CALLS_PER_SECOND": "0"}, "IVR_CALLS_PER_SECOND must be a whole number, 1 or more"),
    ({"IVR_ENV": "development", "IVR_CALLS_PER_SECOND": "fast"},
     r"IVR_CALLS_PER_SECOND must be a whole number \(calls started per second\), not 'fast'"),
])
def test_bad_values_are_named(environ, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        load_settings(environ, instance_path=tmp_path)  # development secrets go to its own folder


@pytest.mark.parametrize("name,value,message", [
    ("IVR_PUBLIC_BASE_URL", "http://ivr.clinic.example",
     "IVR_PUBLIC_BASE_URL must be an https:// URL in production: patients' answers"),
    ("IVR_TWILIO_API_URL", "http://twilio-proxy.clinic.example",
     "IVR_TWILIO_API_URL must be an https:// URL in production: every request to it carries the "
     "account's credentials"),
    ("IVR_SECRET_KEY", "k" * 31,
     "IVR_SECRET_KEY must be at least 32 bytes in production: it protects sessions and the names "
     "of personal prompt audio files"),
    ("IVR_REDIS_URL", "",
     "IVR_REDIS_URL is required when IVR_ENV=production: the embedded Redis is for development only"),
    ("IVR_MAX_CONTENT_LENGTH", "0", "IVR_MAX_CONTENT_LENGTH must be a number of bytes above 0 in production"),
    ("IVR_MAX_CONTENT_LENGTH", "", "IVR_MAX_CONTENT_LENGTH must be a number of bytes above 0 in production"),
    ("IVR_MAX_CONTENT_LENGTH", "lots", "IVR_MAX_CONTENT_LENGTH must be a whole number"),
])
def test_production_refuses_unsafe_settings_by_name(name, value, message):
    with pytest.raises(ConfigError) as refused:
        load_settings({**PRODUCTION, name: value})
    assert str(refused.value).startswith(message)


def test_production_accepts_an_https_carrier_url_and_a_long_secret():
    settings = load_settings({**PRODUCTION, "IVR_TWILIO_API_URL": "https://twilio-proxy.clinic.example",
                              "IVR_MAX_CONTENT_LENGTH": "65536"})
    assert (settings.twilio_api_url, settings.max_content_length) == (
        "https://twilio-proxy.clinic.example", 65536)


def test_the_same_settings_are_accepted_outside_production(tmp_path):
    """Development keeps working over http with the embedded Redis and no size limit."""
    settings = load_settings({"IVR_ENV": "development", "IVR_PUBLIC_BASE_URL": "http://127.0.0.1:5000",
                              "IVR_SECRET_KEY": "short", "IVR_MAX_CONTENT_LENGTH": "0"},
                             instance_path=tmp_path)
    assert (settings.redis_url, settings.secret_key, settings.max_content_length) == ("", "short", 0)


def test_create_app_refuses_to_start_without_the_auth_token(monkeypatch):
    for key, value in PRODUCTION.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("IVR_TWILIO_AUTH_TOKEN")
    with pytest.raises(ConfigError, match="IVR_TWILIO_AUTH_TOKEN"):
        create_app()



STATUS = {"CallSid": "CA" + "0" * 32, "CallStatus": "completed"}


def test_a_request_over_the_default_size_limit_gets_413(twilio):
    assert twilio.post("/twilio/status", {**STATUS, "CallerName": "x" * (1024 * 1024)}).status_code == 413
    # A form of a few KB, like Twilio's, is read and handled as usual (no such call: ignored).
    assert twilio.post("/twilio/status", {**STATUS, "CallerName": "x" * 4000}).status_code == 204


def test_the_size_limit_is_a_setting(database_url, redis, tmp_path):
    from tests.support import AUTH_TOKEN, PUBLIC_BASE_URL, TwilioClient

    app = create_app({"ENV": "test", "DATABASE_URL": database_url, "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
                      "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "INSTANCE_PATH": str(tmp_path), "REDIS": redis,
                      "MAX_CONTENT_LENGTH": "2048"})
    try:
        twilio = TwilioClient(app.test_client())
        assert twilio.post("/twilio/status", {**STATUS, "CallerName": "x" * 2048}).status_code == 413
        assert twilio.post("/twilio/status", {**STATUS, "CallerName": "x" * 1500}).status_code == 204
    finally:
        app.extensions["ivr"].engine.dispose()
