"""The app's connections to the outside (database, Redis, carrier), built once per process."""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from flask import current_app
from redis import Redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from ivr.config import Settings
from ivr.db import make_engine, make_sessions
from ivr.telephony import (CarrierRecordings, Dialer, Messenger, TwilioRecordings, make_dialer,
                           make_messenger)
from speech.audio_cache import PromptAudioCache
from speech.synthesis import Synthesizer


@dataclass
class Services:
    """Settings plus lazily opened connections; one per app, shared by its threads."""

    settings: Settings
    dialer_override: Dialer | None = None
    redis_override: Redis | None = None
    synthesizer_override: Synthesizer | None = None
    recordings_override: CarrierRecordings | None = None
    messenger_override: Messenger | None = None
    _pid: int = field(default_factory=os.getpid)

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings.database_url)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return make_sessions(self.engine)

    @cached_property
    def dialer(self) -> Dialer:
        return self.dialer_override or make_dialer(self.settings)

    @cached_property
    def messenger(self) -> Messenger:
        """Sends text messages through the carrier."""
        return self.messenger_override or make_messenger(self.settings)

    @cached_property
    def recordings(self) -> CarrierRecordings:
        """Callers' recorded answers at the carrier: fetched through one connection pool."""
        return self.recordings_override or TwilioRecordings(self.settings)

    @cached_property
    def prompt_audio(self) -> PromptAudioCache:
        """Rendered prompts, keyed under a key derived from the secret key, so that only this
        server can name a file. Personal prompts' words are noted only outside production."""
        key = hmac.new(self.settings.secret_key.encode(), b"prompt-audio", hashlib.sha256).digest()
        return PromptAudioCache(Path(self.settings.prompt_audio_dir), key,
                                keep_personal_text=not self.settings.is_production)

    @cached_property
    def synthesizer(self) -> Synthesizer:
        """The local synthesiser (never used in a web process's request path: only jobs and
        commands render)."""
        if self.synthesizer_override is not None:
            return self.synthesizer_override
        from speech.espeak_engine import EspeakSynthesizer

        return EspeakSynthesizer()

    @cached_property
    def call_pace(self):
        """The carrier account's calls per second, shared with every other worker through Redis."""
        from outbound.pacing import CallPace

        return CallPace(self.redis, self.settings.calls_per_second, self.settings.twilio_account_sid or "account")

    @cached_property
    def redis(self) -> Redis:
        """IVR_REDIS_URL, or the embedded redis-server of the instance folder."""
        if self.redis_override is not None:
            return self.redis_override
        if self.settings.redis_url:
            return Redis.from_url(self.settings.redis_url)
        from ivr import embedded_redis

        return embedded_redis.connect(Path(self.settings.instance_path or "instance").resolve())

    def after_fork(self) -> None:
        """A forked child must not reuse the parent's pooled database connections."""
        if os.getpid() == self._pid:
            return
        if "engine" in self.__dict__:
            self.engine.dispose(close=False)
        self._pid = os.getpid()


def current_services() -> Services:
    """The Services of the app in the current context."""
    return current_app.extensions["ivr"]
