"""Installing official Vosk models: pick the small model for a language from Vosk's published
list, download it with progress, verify its MD5, unpack it safely, and swap it into place."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Callable

import requests

from speech.common import SpeechError

MODEL_LIST_URL = "https://alphacephei.com/vosk/models/model-list.json"
# Our language codes -> the list's. Small models suit 8 kHz phone audio and modest servers.
LIST_LANGUAGE = {"en": "en-us", "es": "es", "fr": "fr", "ko": "ko"}


class ModelInstallError(SpeechError):
    """A model could not be downloaded, verified or unpacked; nothing was changed."""


def choose(models: list[dict], language: str) -> dict:
    """The newest small, current model for a language from Vosk's list."""
    wanted = LIST_LANGUAGE.get(language, language)
    found = [m for m in models if m.get("lang") == wanted and m.get("type") == "small"
             and str(m.get("obsolete", "false")).lower() != "true"]
    if not found:
        known = sorted({m.get("lang", "?") for m in models})
        raise ModelInstallError(f"no small Vosk model for {language!r}; the list has: {', '.join(known)}")
    return max(found, key=lambda m: m.get("version", m.get("name", "")))


def install(language: str, folder: Path, list_url: str = MODEL_LIST_URL,
            progress: Callable[[int, int], None] | None = None) -> Path:
    """Install the model for a language into folder/<language>; returns that folder."""
    try:
        listing = requests.get(list_url, timeout=30)
        listing.raise_for_status()
        entry = choose(listing.json(), language)
    except (requests.RequestException, ValueError) as exc:
        raise ModelInstallError(f"cannot read the model list at {list_url}: {type(exc).__name__}") from None
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".install-") as work:
        archive = Path(work) / "model.zip"
        _download(entry, archive, progress)
        unpacked = _unpack(archive, Path(work) / "unpacked")
        (unpacked / "INSTALLED.json").write_text(json.dumps(
            {"name": entry["name"], "url": entry["url"], "md5": entry["md5"], "language": language}))
        return replace_folder(unpacked, folder / language)


def replace_folder(new: Path, target: Path) -> Path:
    """Put a folder made beside target (same file system) in its place; the old one, if any, is
    moved aside first and deleted after, so target is never half-written."""
    previous = target.parent / f".previous-{target.name}"
    if target.exists():
        target.rename(previous)
    new.rename(target)
    shutil.rmtree(previous, ignore_errors=True)
    return target


def _download(entry: dict, archive: Path, progress) -> None:
    digest, done = hashlib.md5(), 0
    try:
        with requests.get(entry["url"], stream=True, timeout=60) as response:
            response.raise_for_status()
            total = int(response.headers.get("Content-Length") or entry.get("size") or 0)
            with archive.open("wb") as out:
                for chunk in response.iter_content(1 << 20):
                    out.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    if progress:
                        progress(done, total)
    except requests.RequestException as exc:
        raise ModelInstallError(f"download of {entry['name']} failed: {type(exc).__name__}") from None
    if entry.get("md5") and digest.hexdigest() != entry["md5"]:
        raise ModelInstallError(f"{entry['name']} does not match its published MD5 (corrupt or "
                                f"tampered download); nothing was installed")


def _unpack(archive: Path, into: Path) -> Path:
    """Unpack refusing paths outside the target; returns the model's own folder."""
    try:
        with zipfile.ZipFile(archive) as zipped:
            root = into.resolve()
            for member in zipped.namelist():
                if not (root / member).resolve().is_relative_to(root):
                    raise ModelInstallError(f"the archive holds an unsafe path: {member!r}")
            zipped.extractall(into)
    except zipfile.BadZipFile:
        raise ModelInstallError("the download is not a zip archive") from None
    candidates = [p for p in [into, *into.iterdir()] if p.is_dir() and (p / "conf").is_dir()]
    if not candidates:
        raise ModelInstallError("the archive holds no Vosk model (no conf/ folder)")
    return candidates[-1]
