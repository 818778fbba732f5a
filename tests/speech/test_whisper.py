"""The Whisper engine with its real models on real recordings at telephone quality.

Floors sit below what bench/speech.py measures with speaker-grouped cross-validation (README,
"Answers by voice"); the loaded model is shared by the whole session (one per process)."""

import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from speech import Recognition, SpeechError, SpeechModels, load_wav, recognizer_for
from speech.audio import Audio
from speech.intents import intent_of, phrases_for
from speech.whisper_engine import WhisperEngine
from speech.whisper_models import TINY_EN, UntrustedWhisperModelError, source_for

YES_NO_STOP = phrases_for("en", ["yes", "no", "stop"])
DIGITS = phrases_for("en", [str(n) for n in range(10)])
DIGIT_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


@pytest.fixture(scope="session")
def whisper(speech_models) -> WhisperEngine:
    engine = recognizer_for("en", speech_models)
    assert isinstance(engine, WhisperEngine) and engine.model_name == "tiny.en"
    return engine


def phone(path) -> Audio:
    """A clip as the carrier hands a recorded answer over: 8 kHz mu-law, with the half second of
    quiet a recording has around a word (bench/speech.py centres each clip in 2 s)."""
    return load_wav(load_wav(path).mulaw_wav()).padded(0.5)


def heard(engine, path, grammar) -> Recognition:
    return engine.recognize(phone(path), grammar)


@pytest.mark.parametrize("label", ["yes", "no", "stop"])
def test_whisper_understands_real_yes_no_and_stop_over_a_phone_line(whisper, clips, label):
    """Cross-validated: 61-62 of 62 (README); a floor of 90% per word."""
    files = sorted((clips / label).glob("*.wav"))
    results = [heard(whisper, path, YES_NO_STOP) for path in files]
    assert sum(intent_of("en", r) == label for r in results) >= 0.9 * len(files)
    assert all(r.engine == "whisper" and 0 <= r.confidence <= 1 for r in results)


def test_whisper_understands_real_digits(whisper, clips):
    """Three clips of each digit (speakers of both sources); cross-validated about 97% on all 130."""
    files = [p for word in DIGIT_WORDS for p in sorted((clips / word).glob("*.wav"))[::4]]
    right = sum(intent_of("en", heard(whisper, p, DIGITS)) == str(DIGIT_WORDS.index(p.parent.name))
                for p in files)
    assert right >= 0.85 * len(files), (right, len(files))


def tone(name: str) -> Audio:
    """Two seconds of a sound a phone line carries that is not an answer, as 8 kHz mu-law."""
    t = np.arange(16000) / 8000
    waves = {"dtmf-5": 0.25 * (np.sin(2 * np.pi * 770 * t) + np.sin(2 * np.pi * 1336 * t)),
             "dial-tone": 0.25 * (np.sin(2 * np.pi * 350 * t) + np.sin(2 * np.pi * 440 * t)),
             "hum-60": sum(0.3 / k * np.sin(2 * np.pi * 60 * k * t) for k in (1, 2, 3, 5))}
    return load_wav(Audio(waves[name].astype(np.float32), 8000).mulaw_wav())


def test_the_gate_rejects_noise_and_keypad_tones_without_decoding(whisper, clips):
    """A noisy line is noisy from start to end: the set's noise clips as they are, at 8 kHz mu-law."""
    noise = [load_wav(load_wav(p).mulaw_wav()) for p in sorted((clips / "_silence_").glob("*.wav"))]
    audios = [tone("dtmf-5"), tone("dial-tone")] + noise
    for audio in audios:
        assert whisper.speech_cut(audio, 5) is None
        result = whisper.recognize(audio, YES_NO_STOP)
        assert (result.text, result.rejected, result.confidence) == ("", "", 0.0)


def test_mains_hum_is_not_taken_for_an_answer(whisper):
    """Hum can pass the gate (Silero gives it up to 0.16), then no phrase is likely enough."""
    result = whisper.recognize(tone("hum-60"), YES_NO_STOP)
    assert intent_of("en", result) is None and result.text == ""


def test_other_words_are_rarely_taken_for_an_answer(whisper, clips):
    """Cross-validated: 1 of 30 accepted (README); the phrase heard below threshold is kept."""
    words = [heard(whisper, p, YES_NO_STOP) for label in ("go", "off", "on", "up", "down")
             for p in sorted((clips / label).glob("*.wav"))]
    assert sum(intent_of("en", r) is not None for r in words) <= 3
    unsure = [r for r in words if r.rejected]
    assert len(unsure) >= 20 and all(r.text == "" and r.rejected in YES_NO_STOP for r in unsure)


def test_each_question_has_its_own_threshold(whisper):
    from speech.whisper_engine import _Question
    from speech.whisper_thresholds import DIGITS as DIGIT_INTENTS, FITTED, YES_NO_STOP as YNS

    assert _Question.of(whisper, tuple(YES_NO_STOP)).threshold == FITTED["tiny.en", "en", YNS]
    assert _Question.of(whisper, tuple(DIGITS)).threshold == FITTED["tiny.en", "en", DIGIT_INTENTS]


def espeak(tmp_path, text, voice="gmw/en-us", rate=140) -> Audio:
    if not shutil.which("espeak-ng"):
        pytest.skip("espeak-ng is not installed (make test installs it)")
    path = tmp_path / f"{abs(hash((text, voice, rate)))}.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(rate), "-w", str(path), text], check=True)
    return load_wav(path).telephone()


def test_phrases_of_several_words_are_scored_as_whole_sequences(whisper, clips):
    """Real "go" followed by real "down" (or "on"): all three phrases begin with "go", so only
    the words after it can tell them apart."""
    go = load_wav(sorted((clips / "go").glob("*.wav"))[0]).samples
    for second in ("down", "on"):
        then = load_wav(sorted((clips / second).glob("*.wav"))[0]).samples
        audio = load_wav(Audio(np.concatenate([go, then]), 16000).mulaw_wav()).padded(0.5)
        result = whisper.recognize(audio, ["go up", "go down", "go on"])
        assert (result.text or result.rejected) == f"go {second}", result


def test_a_spoken_emergency_is_heard_at_any_question(whisper, tmp_path):
    """espeak-ng's "chest pain" (synthetic) in four voices and rates, at the identity question."""
    voices = [("gmw/en-us", 110), ("gmw/en-us", 140), ("en-us+f2", 140), ("gmw/en", 110)]
    results = [whisper.recognize(espeak(tmp_path, "chest pain", voice, rate), phrases_for("en", ["yes", "no"]))
               for voice, rate in voices]
    assert sum(intent_of("en", r) == "emergency" for r in results) >= 3, results


def test_an_emergency_in_a_transcript_is_found_as_whole_words():
    from speech.whisper_engine import emergency_in

    emergencies = phrases_for("en", [])
    assert emergency_in("I think I have Chest pain.", emergencies) == "chest pain"
    assert emergency_in("I can’t breathe!", emergencies) == "can't breathe"
    assert emergency_in("My chest is fine, no pain", emergencies) == ""
    assert emergency_in("emergencies happen", emergencies) == ""


def test_threads_share_one_model_and_decode_no_more_than_the_limit_at_once(whisper, clips, speech_models,
                                                                           monkeypatch):
    files = sorted((clips / "yes").glob("*.wav"))[:3] + sorted((clips / "no").glob("*.wav"))[:3]
    serial = [heard(whisper, p, YES_NO_STOP).text for p in files]
    busy, most, lock = [0], [0], threading.Lock()
    step = WhisperEngine._step

    def counting(self, *args):
        with lock:
            busy[0] += 1
            most[0] = max(most[0], busy[0])
        try:
            return step(self, *args)
        finally:
            with lock:
                busy[0] -= 1

    monkeypatch.setattr(WhisperEngine, "_step", counting)
    results: dict[int, tuple[bool, str]] = {}

    def answer(n: int) -> None:
        engine = recognizer_for("en", speech_models)
        results[n] = (engine is whisper, heard(engine, files[n % len(files)], YES_NO_STOP).text)

    threads = [threading.Thread(target=answer, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [results[n] for n in range(12)] == [(True, serial[n % len(files)]) for n in range(12)]
    assert 1 <= most[0] <= 2  # IVR_WHISPER_DECODES, 2 by default


def test_spanish_and_french_share_the_multilingual_model(speech_models, tmp_path):
    spanish, french = recognizer_for("es", speech_models), recognizer_for("fr", speech_models)
    assert spanish.name == french.name == "whisper" and spanish.loaded is french.loaded
    assert spanish.model_name == "base"
    # espeak-ng's voices (synthetic): words base hears at 110, 140 and 170 words a minute.
    for engine, voice, word, intent in ((spanish, "roa/es-419", "no", "no"), (spanish, "roa/es-419", "basta", "stop"),
                                        (french, "roa/fr", "oui", "yes"), (french, "roa/fr", "arrêtez", "stop")):
        result = engine.recognize(espeak(tmp_path, word, voice), phrases_for(engine.language, ["yes", "no", "stop"]))
        assert intent_of(engine.language, result) == intent, (voice, word, result)


def test_the_model_is_loaded_from_files_checked_against_their_recorded_sha256(tmp_path, speech_models):
    packaged = source_for("en", SpeechModels(tmp_path / "nothing-installed"))
    assert packaged.folder is None and packaged.read().keys() == dict(TINY_EN.files).keys()
    tampered = tmp_path / "whisper" / "tiny.en"
    tampered.mkdir(parents=True)
    for file, _ in TINY_EN.files:
        shutil.copy(packaged.package_dirs[0] / file, tampered / file)
    with (tampered / "config.json").open("a") as handle:
        handle.write(" ")
    models = SpeechModels(speech_models.vosk_dir, whisper_dir=tmp_path / "whisper")
    with pytest.raises(UntrustedWhisperModelError, match=r"tiny.en at .*: config.json does not match the "
                                                         r"SHA-256 recorded for Systran/faster-whisper-tiny.en"):
        recognizer_for("en", models)


def test_recognition_runs_with_the_network_unplugged():
    """A fresh interpreter in which every socket fails: the model loads and hears a word."""
    code = """
import socket, sys, pathlib
def refuse(*a, **k): raise OSError("no network here")
socket.socket.connect = refuse
socket.create_connection = refuse
from speech import SpeechModels, recognizer_for
from speech.audio import Audio
import numpy as np
engine = recognizer_for("en", SpeechModels(pathlib.Path(sys.argv[1])))
import os
assert os.environ["HF_HUB_OFFLINE"] == "1"
print(engine.name, engine.model_name)
"""
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code, "/nonexistent"], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["whisper", "tiny.en"]


def test_a_grammar_needs_a_phrase(whisper, clips):
    with pytest.raises(SpeechError, match="at least one phrase"):
        whisper.recognize(phone(sorted((clips / "yes").glob("*.wav"))[0]), ["[unk]", " "])
