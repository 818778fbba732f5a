"""Settings read from IVR_* environment variables and validated before the app starts."""

from __future__ import annotations

import json
import os
import re
import secrets
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

import limits
import phonenumbers

from ivr.errors import ConfigError
from speech.common import SpeechModels

ENVIRONMENTS = ("production", "development", "test")
CARRIERS = ("twilio", "sandbox")

# Sandbox account SID: valid-looking but useless against the real Twilio API. Its auth token and
# the secret key are random per instance folder (development-secrets.json), never a public default.
SANDBOX_ACCOUNT_SID = "AC" + "0" * 32
# Twilio's documented "valid" magic From number for test credentials.
SANDBOX_FROM_NUMBER = "+15005550006"


@dataclass(frozen=True)
class Settings:
    """Everything the server needs to know about its deployment."""

    env: str = "production"
    database_url: str = ""
    redis_url: str = ""
    public_base_url: str = ""
    carrier: str = "twilio"
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_api_url: str = ""
    from_number: str = ""
    fallback_staff_number: str = ""
    secret_key: str = ""
    proxy_hops: int = 0
    instance_path: str = ""
    prompt_audio_dir: str = ""
    voicemail_dir: str = ""  # messages callers leave for staff (kept here, deleted at the carrier)
    twilio_unknown_params: str = "refuse"  # or "log": Twilio may add parameters without notice
    vosk_models_dir: str = ""  # where `ivr speech install-model` puts a folder per language
    # IVR_VOSK_MODEL_<LANG>: a language's Vosk model folder, set explicitly ({"es": "/models/es"})
    vosk_model_by_language: Mapping[str, str] = field(default_factory=dict)
    whisper_models_dir: str = ""  # installed Whisper conversions, a folder per model name
    whisper_decodes: int = 2      # spoken answers decoded at once per process; more wait their turn
    whisper_threads: int = 1      # CPU threads per decode
    # Twilio's webhook forms are a few KB: a megabyte is generous, and stops one request from
    # filling the server's memory. 0 means no limit (refused in production).
    max_content_length: int = 1024 * 1024
    reconcile_seconds: int = 60       # how often the worker brings the queue in step with the database
    stale_call_seconds: int = 3600    # a call not final this long after it began is asked of the carrier
    calls_per_second: int = 1         # calls the carrier account starts per second, all workers together
    api_rate_limit: str = "600 per minute"  # requests per API token (limits' notation: "10 per second")
    # Where the API's docs page loads Swagger UI from (the browser fetches it; the API never does).
    api_docs_assets_url: str = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/"

    @property
    def is_production(self) -> bool:
        """True when real patients may be called."""
        return self.env == "production"

    @property
    def speech_models(self) -> SpeechModels:
        """Where speech models are, in the speech package's own terms."""
        folders = {language: Path(folder) for language, folder in self.vosk_model_by_language.items()}
        return SpeechModels(Path(self.vosk_models_dir), folders, Path(self.whisper_models_dir),
                            self.whisper_decodes, self.whisper_threads)


def _env_name(field_name: str) -> str:
    return "IVR_" + field_name.upper()


def load_settings(environ: Mapping[str, str] | None = None,
                  overrides: Mapping[str, Any] | None = None,
                  instance_path: str | os.PathLike | None = None) -> Settings:
    """Read IVR_* variables, apply overrides (keys like DATABASE_URL), fill defaults, validate."""
    environ = os.environ if environ is None else environ
    overrides = {k.lower(): v for k, v in (overrides or {}).items()}
    values: dict[str, Any] = {}
    for f in fields(Settings):
        if f.name in overrides:
            values[f.name] = overrides[f.name]
        elif _env_name(f.name) in environ:
            values[f.name] = environ[_env_name(f.name)]
    if instance_path is not None and "instance_path" not in values:
        values["instance_path"] = str(instance_path)
    if "vosk_model_by_language" not in overrides:
        values["vosk_model_by_language"] = _vosk_models_by_language(environ)
    for name, unit in _WHOLE_NUMBERS.items():
        if name in values:
            values[name] = _whole_number(name, values[name], unit)
    settings = Settings(**values)
    return validate(_with_defaults(settings))


# Settings that are whole numbers, with what they count (for the message when one is not).
_WHOLE_NUMBERS = {"proxy_hops": "the count of trusted proxies", "max_content_length": "bytes",
                  "reconcile_seconds": "seconds", "stale_call_seconds": "seconds",
                  "calls_per_second": "calls started per second",
                  "whisper_decodes": "answers decoded at once", "whisper_threads": "CPU threads per decode"}


def _whole_number(name: str, raw: Any, unit: str) -> int:
    """A setting read as a whole number 0 or more; empty is 0."""
    try:
        value = int(str(raw).strip() or 0)
    except ValueError:
        raise ConfigError(f"{_env_name(name)} must be a whole number ({unit}), not {raw!r}") from None
    if value < 0:
        raise ConfigError(f"{_env_name(name)} must not be negative ({unit})")
    return value


def _with_defaults(s: Settings) -> Settings:
    """Fill what a development or test server can safely invent; production gets no secrets."""
    instance = Path(s.instance_path or "instance")
    changes: dict[str, Any] = {}
    if not s.database_url:
        changes["database_url"] = f"sqlite:///{(instance / 'ivr.sqlite3').resolve()}"
    if not s.prompt_audio_dir:
        changes["prompt_audio_dir"] = str((instance / "prompt-audio").resolve())
    if not s.voicemail_dir:
        changes["voicemail_dir"] = str((instance / "voicemail").resolve())
    # Model folders are found from the instance folder, whatever directory a command runs in.
    changes["vosk_models_dir"] = str((instance / (s.vosk_models_dir or "vosk-models")).resolve())
    changes["whisper_models_dir"] = str((instance / (s.whisper_models_dir or "whisper-models")).resolve())
    changes["vosk_model_by_language"] = {language: str((instance / folder).resolve())
                                         for language, folder in s.vosk_model_by_language.items()}
    if not s.is_production:
        if s.carrier == "twilio" and not s.twilio_auth_token:
            changes["carrier"] = "sandbox"
        secrets_ = _development_secrets(instance) if not (s.twilio_auth_token and s.secret_key) else {}
        changes["twilio_account_sid"] = s.twilio_account_sid or SANDBOX_ACCOUNT_SID
        changes["twilio_auth_token"] = s.twilio_auth_token or secrets_["auth_token"]
        changes["from_number"] = s.from_number or SANDBOX_FROM_NUMBER
        changes["public_base_url"] = s.public_base_url or "http://127.0.0.1:5000"
        changes["secret_key"] = s.secret_key or secrets_["secret_key"]
    return replace(s, **changes)


VOSK_MODEL_VARIABLE = re.compile(r"IVR_VOSK_MODEL_([A-Z]{2,3})")


def _vosk_models_by_language(environ: Mapping[str, str]) -> dict[str, str]:
    """IVR_VOSK_MODEL_<LANG> variables as {lang: folder} (IVR_VOSK_MODEL_ES -> "es")."""
    if environ.get("IVR_VOSK_MODELS"):
        raise ConfigError("IVR_VOSK_MODELS is now called IVR_VOSK_MODELS_DIR (a relative folder is "
                          "found from the instance folder)")
    return {match[1].lower(): folder for name, folder in environ.items()
            if (match := VOSK_MODEL_VARIABLE.fullmatch(name)) and folder}


def _development_secrets(instance: Path) -> dict[str, str]:
    """Random credentials for a development instance, made once and shared by its processes."""
    path = instance / "development-secrets.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        pass
    instance.mkdir(parents=True, exist_ok=True)
    made = {"auth_token": secrets.token_hex(16), "secret_key": secrets.token_hex(32)}
    try:
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
            json.dump(made, handle)
    except FileExistsError:  # another process made them first: use theirs
        return json.loads(path.read_text())
    return made


def validate(s: Settings) -> Settings:
    """Stop start-up with a message that names the variable at fault."""
    if s.env not in ENVIRONMENTS:
        raise ConfigError(f"IVR_ENV must be one of {', '.join(ENVIRONMENTS)}, not {s.env!r}")
    if s.twilio_unknown_params not in ("refuse", "log"):
        raise ConfigError("IVR_TWILIO_UNKNOWN_PARAMS must be refuse or log, "
                          f"not {s.twilio_unknown_params!r}")
    if s.carrier not in CARRIERS:
        raise ConfigError(f"IVR_CARRIER must be one of {', '.join(CARRIERS)}, not {s.carrier!r}")
    if s.is_production:
        _refuse_unsafe_production(s)
    for name in ("reconcile_seconds", "stale_call_seconds"):
        if getattr(s, name) < 1:
            raise ConfigError(f"{_env_name(name)} must be a whole number of seconds, 1 or more")
    for name in ("whisper_decodes", "whisper_threads", "calls_per_second"):
        if getattr(s, name) < 1:
            raise ConfigError(f"{_env_name(name)} must be a whole number, 1 or more")
    if s.public_base_url and not s.public_base_url.startswith(("http://", "https://")):
        raise ConfigError("IVR_PUBLIC_BASE_URL must start with http:// or https://")
    try:
        if not limits.parse_many(s.api_rate_limit):
            raise ValueError
    except ValueError:
        raise ConfigError(f"IVR_API_RATE_LIMIT must be a rate like '600 per minute', not {s.api_rate_limit!r}") from None
    for name in ("from_number", "fallback_staff_number"):
        value = getattr(s, name)
        if value and not is_e164(value):
            raise ConfigError(f"{_env_name(name)} must be a phone number in E.164 form, like +15551234567")
    return replace(s, public_base_url=s.public_base_url.rstrip("/"))


def _refuse_unsafe_production(s: Settings) -> None:
    """Production needs its secrets, encrypted transport, a shared Redis and a request size limit."""
    if s.carrier != "twilio":
        raise ConfigError("IVR_CARRIER=sandbox cannot be used with IVR_ENV=production")
    for name in ("twilio_account_sid", "twilio_auth_token", "public_base_url",
                 "from_number", "secret_key"):
        if not getattr(s, name):
            raise ConfigError(f"{_env_name(name)} is required when IVR_ENV=production "
                              f"(set IVR_ENV=development to run against the sandbox carrier)")
    if not s.public_base_url.startswith("https://"):
        raise ConfigError("IVR_PUBLIC_BASE_URL must be an https:// URL in production: patients' "
                          "answers and the audio of their prompts travel over it")
    if s.twilio_api_url and not s.twilio_api_url.startswith("https://"):
        raise ConfigError("IVR_TWILIO_API_URL must be an https:// URL in production: every request "
                          "to it carries the account's credentials")
    if len(s.secret_key.encode()) < 32:
        raise ConfigError("IVR_SECRET_KEY must be at least 32 bytes in production: it protects "
                          "sessions and the names of personal prompt audio files (make one with "
                          "`python3 -c 'import secrets; print(secrets.token_hex(32))'`)")
    if not s.redis_url:
        raise ConfigError("IVR_REDIS_URL is required when IVR_ENV=production: the embedded Redis is "
                          "for development only (it stops when the process that started it exits, "
                          "and every other process loses its connection for good)")
    if not s.max_content_length:
        raise ConfigError("IVR_MAX_CONTENT_LENGTH must be a number of bytes above 0 in production: "
                          "without a limit one request can fill the server's memory (Twilio's "
                          "webhook forms are a few KB; the default is 1048576)")


def is_e164(number: str) -> bool:
    """True for a valid number written in E.164 form (+ and country code)."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return False
    return (phonenumbers.is_valid_number(parsed)
            and phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) == number)
