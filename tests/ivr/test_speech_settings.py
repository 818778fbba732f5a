"""Speech model settings read once, through Settings, from the instance folder; clinics whose voice
answers no engine here can give are named at start-up and in `ivr clinics list`."""

import logging
from pathlib import Path

import pytest

from ivr import create_app
from ivr.config import load_settings
from ivr.errors import ConfigError
from ivr.models import Clinic
from speech.common import SpeechModels

WARNING_SOURCE = "ivr.voice_engines"


def test_model_folders_are_found_from_the_instance_folder_not_the_working_directory(tmp_path, monkeypatch):
    instance = (tmp_path / "instance").resolve()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    settings = load_settings({"IVR_ENV": "development", "IVR_VOSK_MODELS_DIR": "models",
                              "IVR_VOSK_MODEL_ES": "spanish", "IVR_VOSK_MODEL_FR": "/opt/models/fr",
                              "IVR_VOSK_MODEL_LIST_URL": "http://mirror.example/list.json",
                              "IVR_WHISPER_MODELS_DIR": "whisper", "IVR_WHISPER_DECODES": "3",
                              "IVR_WHISPER_THREADS": "2"},
                             instance_path=instance)
    assert settings.speech_models == SpeechModels(instance / "models", {
        "es": instance / "spanish", "fr": Path("/opt/models/fr")}, instance / "whisper", 3, 2)
    default = load_settings({"IVR_ENV": "development"}, instance_path=instance)
    assert default.speech_models == SpeechModels(instance / "vosk-models", {}, instance / "whisper-models", 2, 1)


@pytest.mark.parametrize("name,value", [("IVR_WHISPER_DECODES", "0"), ("IVR_WHISPER_THREADS", "two")])
def test_whisper_limits_must_be_whole_numbers_above_zero(tmp_path, name, value):
    with pytest.raises(ConfigError, match=f"^{name} must be a whole number"):
        load_settings({"IVR_ENV": "development", name: value}, instance_path=tmp_path)


def test_the_old_models_variable_is_refused_by_its_new_name(tmp_path):
    with pytest.raises(ConfigError, match="^IVR_VOSK_MODELS is now called IVR_VOSK_MODELS_DIR"):
        load_settings({"IVR_ENV": "development", "IVR_VOSK_MODELS": "/opt/models"}, instance_path=tmp_path)


def test_ivr_speech_commands_use_the_apps_model_settings(database_url, tmp_path, monkeypatch):
    instance = tmp_path / "instance"
    (instance / "models" / "ko" / "conf").mkdir(parents=True)
    app = create_app({"ENV": "test", "DATABASE_URL": database_url, "INSTANCE_PATH": str(instance),
                      "VOSK_MODELS_DIR": "models", "VOSK_MODEL_BY_LANGUAGE": {"fr": "french"}})
    rows = {line.split()[0]: line.split() for line in
            app.test_cli_runner().invoke(args=["speech", "engines"]).output.splitlines()}
    assert rows["fr"][1:] == ["vosk", str((instance / "french").resolve())]  # set explicitly: before Whisper
    assert rows["es"][1] == rows["ko"][1] == "whisper"
    monkeypatch.setattr("speech.recognizer.source_for", lambda language, models: None)  # without Whisper base
    rows = {line.split()[0]: line.split() for line in
            app.test_cli_runner().invoke(args=["speech", "engines"]).output.splitlines()}
    assert rows["ko"][1:] == ["vosk", str((instance / "models" / "ko").resolve())]
    app.extensions["ivr"].engine.dispose()


def add_clinics(sessions, *clinics):
    """Clinics given as (language, voice answers on?); returns their ids in order."""
    with sessions.begin() as session:
        rows = [Clinic(name=f"Clinic {n}", phone=f"+1212555020{n}", language=language, voice_answers=on)
                for n, (language, on) in enumerate(clinics)]
        session.add_all(rows)
        session.flush()
        return [row.id for row in rows]


def start_up_warnings(caplog, database_url, instance):
    """The WARNING lines the speech check logs while a development app is built."""
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=WARNING_SOURCE):
        app = create_app({"ENV": "development", "DATABASE_URL": database_url, "INSTANCE_PATH": str(instance)})
    app.extensions["ivr"].engine.dispose()
    return [r.getMessage() for r in caplog.records if r.name == WARNING_SOURCE and r.levelno == logging.WARNING]


def test_start_up_names_each_clinic_whose_voice_answers_have_no_engine(app, sessions, caplog, database_url,
                                                                      tmp_path):
    german, english, french_off, spanish = add_clinics(sessions, ("de", True), ("en", True), ("fr", False),
                                                       ("es", True))
    warnings = start_up_warnings(caplog, database_url, tmp_path / "instance")
    assert warnings == [f"clinic {german}: voice answers are on but no speech engine here recognises de, "
                        f"so callers can only answer by key; install a Vosk model with "
                        f"`ivr speech install-model de` or set IVR_VOSK_MODEL_DE"]


@pytest.mark.parametrize("url", ["not migrated", "postgresql+psycopg://nobody@127.0.0.1:9/none"])
def test_start_up_goes_on_when_the_database_is_not_migrated_or_unreachable(caplog, tmp_path, url):
    url = f"sqlite:///{tmp_path / 'empty.sqlite3'}" if url == "not migrated" else url
    assert start_up_warnings(caplog, url, tmp_path / "instance") == []
    assert any("voice answer engines not checked" in r.getMessage() for r in caplog.records)


def test_test_apps_skip_the_check(caplog, database_url, tmp_path):
    with caplog.at_level(logging.INFO, logger=WARNING_SOURCE):
        app = create_app({"ENV": "test", "DATABASE_URL": "sqlite:///" + str(tmp_path / "never.sqlite3"),
                          "INSTANCE_PATH": str(tmp_path / "instance")})
    assert not [r for r in caplog.records if r.name == WARNING_SOURCE]
    assert not (tmp_path / "never.sqlite3").exists()
    app.extensions["ivr"].engine.dispose()


def test_clinics_list_says_when_voice_answers_have_no_engine(runner, sessions):
    german, english, french_off, spanish = add_clinics(sessions, ("de", True), ("en", True), ("fr", False),
                                                       ("es", True))
    lines = {int(line.split()[0]): line for line in runner.invoke(args=["clinics", "list"]).output.splitlines()}
    assert lines[german].endswith(
        "language de  voice answers on (no engine for de: callers answer by key)  senior mode off  queue on (300 s, lines in order)")
    # Spanish: Whisper base (the multilingual extra).
    assert lines[spanish].endswith("language es  voice answers on  senior mode off  queue on (300 s, lines in order)")
    assert lines[english].endswith("language en  voice answers on  senior mode off  queue on (300 s, lines in order)")
    assert lines[french_off].endswith("language fr  voice answers off  senior mode off  queue on (300 s, lines in order)")
