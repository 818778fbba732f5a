"""Rendered prompt audio on disk, keyed by (language, voice, rate, text).

A key is an HMAC of those four under the server's secret, so a file's name says nothing about
its words and nobody without the secret can name a file: the audio URL given to the carrier is
the only way to it. Prompts that may name a patient ("personal") live in their own folder,
readable by the server's user only, and are deleted a few hours after they were last used.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import re
import tempfile
from pathlib import Path

from speech.common import Voice

log = logging.getLogger(__name__)

KEY = re.compile(r"[0-9a-f]{64}")
SHARED, PERSONAL = "shared", "personal"
# Personal prompts are rendered minutes before their call (its retries come 1, 5 and 15 minutes
# apart) and a hit makes a file young again; hours are plenty, and patients' details do not
# pile up on disk.
PERSONAL_LIFETIME = dt.timedelta(hours=6)
PRUNE_EVERY = dt.timedelta(minutes=10)


class PromptAudioCache:
    """A folder of 8 kHz mu-law WAV files, each with a small JSON note of what it says."""

    def __init__(self, folder: Path, secret: str | bytes, *, keep_personal_text: bool = False) -> None:
        self.folder = Path(folder)
        self._secret = secret.encode() if isinstance(secret, str) else secret
        # The words of a personal prompt are kept in its note only where the data is not real
        # (development and the sandbox, whose transcripts show them).
        self.keep_personal_text = keep_personal_text
        self._warned = False

    def key(self, voice: Voice, text: str) -> str:
        """The file name (without .wav) for these words in this voice."""
        message = json.dumps([voice.language, voice.name, voice.rate, text], ensure_ascii=False)
        return hmac.new(self._secret, message.encode(), hashlib.sha256).hexdigest()

    def find(self, key: str) -> Path | None:
        """The WAV file for a key, if it has been rendered. A folder that cannot be read counts
        as empty: a webhook then says the prompt instead of failing the call."""
        if not KEY.fullmatch(key):
            return None
        for kind in (SHARED, PERSONAL):
            path = self.folder / kind / f"{key}.wav"
            try:
                if path.is_file():
                    return path
            except OSError as exc:
                if not self._warned:  # once per process: every turn would otherwise repeat it
                    self._warned = True
                    log.warning("prompt audio folder %s cannot be read (%s): prompts are said instead; "
                                "web servers and workers must run as the same user",
                                path.parent, type(exc).__name__)
        return None

    def refresh(self, key: str) -> None:
        """Make a personal prompt young again: a call is about to play it."""
        path = self.find(key)
        if path is not None and path.parent.name == PERSONAL:
            for file in (path, path.with_suffix(".json")):
                try:
                    os.utime(file)
                except FileNotFoundError:
                    pass

    def note(self, key: str) -> dict | None:
        """What a rendered file says and how (language, voice, rate, text, seconds)."""
        path = self.find(key)
        if path is None:
            return None
        try:
            return json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def store(self, key: str, wav: bytes, note: dict, *, personal: bool) -> Path:
        """Write a rendered file atomically (readers never see half a file)."""
        folder = self.folder / (PERSONAL if personal else SHARED)
        folder.mkdir(parents=True, exist_ok=True, mode=0o700 if personal else 0o755)
        target = folder / f"{key}.wav"
        if personal and not self.keep_personal_text:
            note = {k: v for k, v in note.items() if k != "text"}
        _write_atomic(target.with_suffix(".json"), json.dumps(note, ensure_ascii=False).encode(), personal)
        _write_atomic(target, wav, personal)
        return target

    def prune(self, now: dt.datetime | None = None, lifetime: dt.timedelta = PERSONAL_LIFETIME,
              every: dt.timedelta = PRUNE_EVERY) -> int:
        """Delete personal prompts older than lifetime; returns how many were deleted. Callers
        may call it before every render: the folder is scanned at most once per `every`."""
        folder = self.folder / PERSONAL
        if not folder.is_dir():
            return 0
        now_ts = (now or dt.datetime.now(dt.timezone.utc)).timestamp()
        marker = folder / ".pruned"
        try:
            if now_ts - marker.stat().st_mtime < every.total_seconds():
                return 0
        except FileNotFoundError:
            pass
        marker.touch()
        os.utime(marker, (now_ts, now_ts))
        cutoff = now_ts - lifetime.total_seconds()
        deleted = 0
        for path in folder.iterdir():
            if path == marker:
                continue
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    deleted += path.suffix == ".wav"
            except FileNotFoundError:
                pass  # another process pruned it first
        return deleted


def _write_atomic(target: Path, data: bytes, private: bool) -> None:
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.chmod(temporary, 0o600 if private else 0o644)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
