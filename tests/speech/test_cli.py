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
    assert (lines[0]["text"], lines[0]["intent"], lines[0]["engine"]) == ("no", "no", "pocketsphinx")
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
    assert (line["text"], line["intent"], line["engine"]) == ("네", "yes", "vosk")


def test_engines_lists_each_language_and_what_to_install(speech, korean_model):
    rows = {line.split()[0]: line for line in speech("engines").output.splitlines()}
    assert sorted(rows) == ["en", "es", "fr", "ko"]
    assert rows["en"].split()[1] == "pocketsphinx" and rows["ko"].split()[1] == "vosk"
    assert "install a Vosk model with `ivr speech install-model es` or set IVR_VOSK_MODEL_ES" in rows["es"]
