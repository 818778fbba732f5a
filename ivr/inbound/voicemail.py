"""Messages callers leave after hours: fetched from the carrier once, kept on this machine for
staff (the recording is then deleted at the carrier like every other), never logged."""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

from ivr.errors import IvrError
from ivr.telephony import CarrierRecordings
from speech.audio import AudioError, load_wav

_ID = re.compile(r"^[0-9a-f]{32}$")


class VoicemailError(IvrError):
    """A message could not be fetched, kept or found."""


def keep(recordings: CarrierRecordings, folder: str | os.PathLike, url: str) -> tuple[str, int]:
    """Fetch a caller's message and keep it (owner-only file); its id and length in seconds."""
    try:
        audio = recordings.fetch(url)
        seconds = round(load_wav(audio).seconds)
    except (IvrError, AudioError) as exc:
        raise VoicemailError(f"message not kept: {type(exc).__name__}") from None
    message_id = secrets.token_hex(16)
    path = _path(folder, message_id)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.parent.chmod(0o700)  # a folder made before, by hand or older code, is closed too
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(audio)
    return message_id, seconds


def read(folder: str | os.PathLike, message_id: str) -> bytes:
    """The WAV bytes of a kept message."""
    if not _ID.match(message_id or ""):
        raise VoicemailError(f"{message_id!r} is not a message id")
    try:
        return _path(folder, message_id).read_bytes()
    except FileNotFoundError:
        raise VoicemailError(f"message {message_id} is not in {folder}") from None


def forget(folder: str | os.PathLike, message_id: str | None) -> bool:
    """Delete a kept message once its task is closed; False when there was none."""
    if not message_id or not _ID.match(message_id):
        return False
    try:
        _path(folder, message_id).unlink()
    except FileNotFoundError:
        return False
    return True


def _path(folder: str | os.PathLike, message_id: str) -> Path:
    return Path(folder) / f"{message_id}.wav"
