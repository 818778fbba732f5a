"""Serves rendered prompt audio to the carrier (the URLs in <Play>).

The carrier fetches media without a signature we could check, so a file's name is the secret:
an HMAC under a key derived from the server's secret key (see speech/audio_cache.py), which
nobody can guess or derive from the words. Anything else is a 404.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, send_file

from speech.audio_cache import PERSONAL
from ivr.services import current_services

bp = Blueprint("audio", __name__, url_prefix="/audio")

SHARED_MAX_AGE = 7 * 24 * 3600  # a key names its words for good: the file never changes
PERSONAL_MAX_AGE = 3600


@bp.get("/<key>.wav")
def prompt_audio(key: str) -> Response:
    """One rendered prompt: 8 kHz mono mu-law WAV."""
    path = current_services().prompt_audio.find(key)
    if path is None:
        abort(404)
    response = send_file(path, mimetype="audio/wav", conditional=True, etag=True, max_age=None)
    if path.parent.name == PERSONAL:
        response.headers["Cache-Control"] = f"private, max-age={PERSONAL_MAX_AGE}"
    else:
        response.headers["Cache-Control"] = f"public, max-age={SHARED_MAX_AGE}, immutable"
    return response
