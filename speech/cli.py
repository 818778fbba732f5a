"""`ivr speech ...`: which engines run here, installing models, and transcribing recordings.

The speech package reads no settings of its own: whoever adds these commands says where models
are with a function that returns a SpeechModels (`ivr` reads it from the app's settings).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import click

from speech import intents
from speech.audio import load_wav
from speech.common import AudioError, SpeechError, SpeechModels
from speech.recognizer import available_engines, how_to_add_engine, recognizer_for


def make_speech_group(models: Callable[[], SpeechModels]) -> click.Group:
    """The `speech` command group, finding models where `models()` says."""

    @click.group("speech")
    def speech_group() -> None:
        """Local speech recognition: engines, models and transcription."""

    @speech_group.command("engines")
    @click.option("--json", "as_json", is_flag=True, help="One JSON document instead of a table.")
    def engines(as_json: bool) -> None:
        """Which engine each language uses (Vosk when its model is installed, else the fallback)."""
        import prompts

        languages = sorted(set(prompts.available_languages()) | set(intents.PHRASES))
        rows = available_engines(languages, models())
        if as_json:
            click.echo(json.dumps(rows, indent=2))
            return
        for row in rows:
            engine = row["engine"] or f"none ({row.get('untrusted') or how_to_add_engine(row['language'])})"
            click.echo(f"{row['language']:4} {engine:14} {row['model'] or ''}".rstrip())

    @speech_group.command("install-model")
    @click.argument("language")
    @click.option("--models", "folder", type=click.Path(file_okay=False, path_type=Path),
                  help="Where models go (default: IVR_VOSK_MODELS_DIR, else <instance>/vosk-models).")
    @click.option("--list-url", envvar="IVR_VOSK_MODEL_LIST_URL", default=None,
                  help="Vosk's model list (default: the official one; a mirror works too).")
    def install_model(language: str, folder: Path | None, list_url: str | None) -> None:
        """Download, verify (MD5) and install the official small Vosk model for LANGUAGE."""
        from speech import models as model_files

        configured = models().vosk_dir
        folder = (folder or configured).resolve()
        with click.progressbar(length=100, label=f"Vosk model for {language}") as bar:
            def progress(done: int, total: int) -> None:
                if total:
                    bar.update(int(100 * done / total) - bar.pos)

            try:
                target = model_files.install(language, folder, list_url or model_files.MODEL_LIST_URL,
                                             progress)
            except model_files.ModelInstallError as exc:
                raise click.ClickException(str(exc)) from None
        click.echo(f"installed in {target}; `ivr speech engines` shows which engine each language uses"
                   + ("" if folder == configured.resolve() else f" (set IVR_VOSK_MODELS_DIR={folder})"))

    @speech_group.command("transcribe")
    @click.option("--lang", "language", default="en", show_default=True, help="Language of the speech.")
    @click.option("--grammar", help="Comma-separated phrases to listen for (default: every phrase of "
                                    "the language's yes, no and stop intents).")
    @click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
    def transcribe(language: str, grammar: str | None, files: tuple[Path, ...]) -> None:
        """Recognise each WAV FILE (any sample rate) as a phone call would carry it; one JSON line each."""
        try:
            phrases = ([p.strip() for p in grammar.split(",") if p.strip()] if grammar
                       else intents.phrases_for(language, ["yes", "no", "stop"]))
            engine = recognizer_for(language, models())
        except SpeechError as exc:
            raise click.ClickException(str(exc)) from None
        failed = 0
        for path in files:
            try:
                result = engine.recognize(load_wav(path).telephone(), phrases)
            except (AudioError, SpeechError) as exc:
                click.echo(json.dumps({"file": str(path), "error": str(exc)}, ensure_ascii=False))
                failed += 1
                continue
            click.echo(json.dumps({
                "file": str(path), "text": result.text, "intent": intents.intent_of(language, result),
                "confidence": round(result.confidence, 3), "engine": result.engine,
                "audio_seconds": round(result.audio_seconds, 3),
                "processing_seconds": round(result.processing_seconds, 4),
                **({"rejected": result.rejected} if result.rejected else {})}, ensure_ascii=False))
        if failed:
            raise SystemExit(1)

    return speech_group
