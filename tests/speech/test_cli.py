"""`ivr speech ...` as an administrator uses it."""

import json

from click.testing import CliRunner

from speech.cli import speech_group


def test_transcribe_prints_one_json_line_per_file(clips):
    files = [str(sorted((clips / "no").glob("*.wav"))[0]), str(sorted((clips / "eight").glob("fsdd_*.wav"))[0])]
    result = CliRunner().invoke(speech_group, ["transcribe", "--lang", "en", "--grammar", "yes,no,stop", *files])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [line["file"] for line in lines] == files
    assert set(lines[0]) == {"file", "text", "intent", "confidence", "engine", "audio_seconds",
                             "processing_seconds"}
    assert (lines[0]["text"], lines[0]["intent"], lines[0]["engine"]) == ("no", "no", "pocketsphinx")
    assert lines[1]["audio_seconds"] < 1.3  # an 8 kHz FSDD clip is read at its own rate


def test_transcribe_reports_a_bad_file_and_goes_on(clips, tmp_path):
    (tmp_path / "bad.wav").write_bytes(b"nope")
    good = str(sorted((clips / "yes").glob("*.wav"))[1])
    result = CliRunner().invoke(speech_group, ["transcribe", str(tmp_path / "bad.wav"), good])
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert result.exit_code == 1
    assert lines[0]["error"].startswith("cannot read audio") and lines[1]["intent"] == "yes"


def test_transcribe_korean_by_default_grammar(korean):
    result = CliRunner().invoke(speech_group, ["transcribe", "--lang", "ko", str(korean("네"))])
    line = json.loads(result.output)
    assert (line["text"], line["intent"], line["engine"]) == ("네", "yes", "vosk")


def test_engines_lists_each_language_and_what_to_install():
    rows = {line.split()[0]: line for line in CliRunner().invoke(speech_group, ["engines"]).output.splitlines()}
    assert sorted(rows) == ["en", "es", "fr", "ko"]
    assert rows["en"].split()[1] == "pocketsphinx" and rows["ko"].split()[1] == "vosk"
    assert "install a Vosk model: ivr speech install-model es" in rows["es"]
