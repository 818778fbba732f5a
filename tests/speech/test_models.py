"""`ivr speech install-model`: the real download, verify and unpack path, against a local mirror."""

import hashlib
import io
import json
import zipfile

import pytest
from click.testing import CliRunner
from flask import Flask, Response

from ivr.sandbox.calling import serve
from speech.cli import make_speech_group
from speech.common import SpeechModels


def model_zip(name="vosk-model-small-es-0.42", extra=None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr(f"{name}/conf/model.conf", "--sample-frequency=16000\n")
        z.writestr(f"{name}/am/final.mdl", b"\0" * 64)
        for path, data in (extra or {}).items():
            z.writestr(path, data)
    return buffer.getvalue()


@pytest.fixture
def mirror():
    """A local copy of Vosk's model list and archives; tests choose what it serves."""
    served = {}

    def make(base):
        app = Flask("mirror")

        @app.get("/<path:name>")
        def file(name):
            body = served.get(name)
            return Response(body, mimetype="application/octet-stream") if body is not None else ("", 404)

        return app

    with serve(make) as (_app, base):
        def publish(language="es", archive=None, md5=None, obsolete="false"):
            archive = archive if archive is not None else model_zip()
            served["model.zip"] = archive
            served["model-list.json"] = json.dumps([
                {"lang": language, "name": "vosk-model-small-es-0.42", "type": "small", "obsolete": obsolete,
                 "version": "0.42", "size": len(archive), "url": f"{base}/model.zip",
                 "md5": md5 or hashlib.md5(archive).hexdigest()},
                {"lang": language, "name": "vosk-model-es-0.42", "type": "big", "obsolete": "false",
                 "url": f"{base}/big.zip", "md5": "0"}]).encode()
            return f"{base}/model-list.json"

        yield publish


def speech_command(args, models_folder):
    """`speech ARGS...` for a machine whose installed models are in models_folder."""
    return CliRunner().invoke(make_speech_group(lambda: SpeechModels(models_folder)), args)


def install(args, list_url, models_folder):
    return speech_command(["install-model", *args, "--list-url", list_url], models_folder)


def test_installs_verifies_and_the_engine_choice_follows(mirror, tmp_path, monkeypatch):
    configured = tmp_path / "configured"
    result = install(["es"], mirror(), configured)
    assert result.exit_code == 0, result.output
    assert (configured / "es" / "conf" / "model.conf").exists()
    assert json.loads((configured / "es" / "INSTALLED.json").read_text())["name"] == "vosk-model-small-es-0.42"
    assert "(set IVR_VOSK_MODELS_DIR" not in result.output
    monkeypatch.setattr("speech.recognizer.source_for", lambda language, models: None)  # Whisper base comes first
    rows = {line.split()[0]: line.split() for line in speech_command(["engines"], configured).output.splitlines()}
    assert rows["es"][1] == "vosk" and rows["es"][2] == str(configured / "es")


def test_a_model_installed_elsewhere_says_which_setting_finds_it(mirror, tmp_path):
    result = install(["es", "--models", str(tmp_path / "elsewhere")], mirror(), tmp_path / "configured")
    assert result.exit_code == 0, result.output
    assert f"(set IVR_VOSK_MODELS_DIR={tmp_path / 'elsewhere'})" in result.output


def test_a_download_that_does_not_match_its_md5_installs_nothing(mirror, tmp_path):
    result = install(["es"], mirror(md5="0" * 32), tmp_path)
    assert result.exit_code == 1 and "does not match its published MD5" in result.output
    assert not (tmp_path / "es").exists()


def test_an_archive_that_escapes_its_folder_is_refused(mirror, tmp_path):
    evil = model_zip(extra={"../../escaped.txt": "x"})
    result = install(["es"], mirror(archive=evil), tmp_path / "models")
    assert result.exit_code == 1 and "unsafe path" in result.output
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "models" / "es").exists()


def test_reinstalling_replaces_the_old_model(mirror, tmp_path):
    install(["es"], mirror(), tmp_path)
    (tmp_path / "es" / "stale.txt").write_text("old")
    assert install(["es"], mirror(), tmp_path).exit_code == 0
    assert not (tmp_path / "es" / "stale.txt").exists()


@pytest.mark.parametrize("args,published,message", [
    (["de"], {}, "no small Vosk model for 'de'; the list has: es"),
    (["es"], {"obsolete": "true"}, "no small Vosk model for 'es'"),
])
def test_unknown_or_obsolete_models_are_named(mirror, tmp_path, args, published, message):
    result = install(args, mirror(**published), tmp_path)
    assert result.exit_code == 1 and message in result.output


def test_an_unreachable_list_is_a_plain_error(tmp_path):
    result = install(["es"], "http://127.0.0.1:9/model-list.json", tmp_path)
    assert result.exit_code == 1
    assert "cannot read the model list at http://127.0.0.1:9/model-list.json: ConnectionError" in result.output
