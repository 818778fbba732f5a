"""The real synthesiser: pyttsx3 over espeak-ng, in its own process. Rates, languages and words
are checked by measuring the audio and by recognising it with the real recognisers."""

import glob
import multiprocessing
import os
import signal
import tempfile
import threading
import time

import pytest

import prompts
from speech import Recognition, recognizer_for
from speech.audio import load_wav
from speech.audio_cache import PromptAudioCache, Voice
from speech.intents import intent_of, phrases_for
from speech.pyttsx3_engine import Pyttsx3Synthesizer
from speech.synthesis import SynthesisError, render

SENTENCES = {
    "en": "Thank you for calling the clinic. Please press one to confirm your visit.",
    "es": "Gracias por llamar a la clínica. Por favor, oprima uno para confirmar su cita.",
    "fr": "Merci d'avoir appelé la clinique. Appuyez sur un pour confirmer votre visite.",
    "ko": "병원에 전화해 주셔서 감사합니다. 예약을 확인하시려면 일번을 눌러 주십시오.",
}


@pytest.fixture(scope="module")
def synthesizer():
    engine = Pyttsx3Synthesizer()
    yield engine
    engine.close()


def voice(language, rate=None):
    catalogue = prompts.load(language)
    return Voice(language, catalogue.tts_voice, rate or catalogue.tts_rate)


def test_every_catalogue_has_a_voice_espeak_offers(synthesizer):
    for language in prompts.available_languages():
        assert prompts.load(language).tts_voice in synthesizer.voices(), language


def test_a_slower_rate_gives_longer_speech_in_every_language(synthesizer):
    """Voices and rates alternate on every render, as a batch of calls makes them: a rate that
    did not land (pyttsx3 drops queued changes) would show as equal lengths."""
    seconds = {}
    for rate in (110, 200, 110, 200):
        for language, text in SENTENCES.items():
            audio = synthesizer.synthesize(voice(language, rate), text)
            assert audio.rate == 22050 and audio.seconds > 2, (language, rate)
            seconds.setdefault((language, rate), []).append(audio.seconds)
    for language in SENTENCES:
        slow, fast = seconds[language, 110], seconds[language, 200]
        assert min(slow) / max(fast) > 1.6, (language, slow, fast)  # 200/110 = 1.82 in theory
        assert max(slow) - min(slow) < 0.2 and max(fast) - min(fast) < 0.2, (language, slow, fast)


@pytest.mark.parametrize("word", ["yes", "no"])
def test_english_prompts_say_their_words(synthesizer, tmp_path, word):
    """Rendered through the cache to telephone mu-law, then decoded by the English recogniser
    (what it heard, trusted or not: pocketsphinx is unsure of espeak's robotic voice, and hears
    its "stop", "cancel" or "confirm" as nothing at all)."""
    cache = PromptAudioCache(tmp_path, "k")
    rendered = render(synthesizer, cache, voice("en"), word, personal=False)
    audio = load_wav(cache.find(rendered.key)).telephone()
    result = recognizer_for("en").recognize(audio, phrases_for("en", ["yes", "no", "cancel", "repeat"]))
    assert intent_of("en", Recognition(result.text or result.rejected, 1.0, "-", 0, 0)) == word


@pytest.mark.parametrize("word,intent", [("네", "yes"), ("아니요", "no")])
def test_korean_prompts_are_spoken_in_korean(synthesizer, word, intent):
    audio = synthesizer.synthesize(voice("ko"), word).telephone()
    result = recognizer_for("ko").recognize(audio, phrases_for("ko", ["yes", "no", "stop"]))
    assert intent_of("ko", result) == intent


def test_bad_requests_are_clear_errors(synthesizer):
    with pytest.raises(SynthesisError, match="no voice 'xx/nowhere'"):
        synthesizer.synthesize(Voice("en", "xx/nowhere", 150), "Hello.")
    with pytest.raises(SynthesisError, match="rate 20 is outside"):
        synthesizer.synthesize(voice("en", 20), "Hello.")
    with pytest.raises(SynthesisError, match="the text is empty"):
        synthesizer.synthesize(voice("en"), "  ")
    assert synthesizer.synthesize(voice("en"), "Still working.").seconds > 0.5


def test_a_dead_synthesiser_process_is_replaced(synthesizer):
    synthesizer.synthesize(voice("en"), "One.")
    os.kill(synthesizer._child.pid, signal.SIGKILL)
    synthesizer._child.wait()
    assert synthesizer.synthesize(voice("en"), "Two.").seconds > 0.3


def test_a_hung_synthesiser_process_is_timed_out_and_replaced():
    engine = Pyttsx3Synthesizer(render_timeout=1)
    try:
        engine.synthesize(voice("en"), "One.")
        hung, folder = engine._child, engine._folder
        os.kill(hung.pid, signal.SIGSTOP)
        with pytest.raises(SynthesisError, match="did not answer within 1 s; restarted"):
            engine.synthesize(voice("en"), "Two.")
        assert hung.poll() is not None and not os.path.exists(folder)
        assert engine.synthesize(voice("en"), "Three.").seconds > 0.3
    finally:
        engine.close()


def test_threads_share_one_synthesiser(synthesizer):
    lengths, errors = {}, []

    def speak(n):
        try:
            lengths[n] = synthesizer.synthesize(voice("en", 110 if n % 2 else 200), SENTENCES["en"]).seconds
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=speak, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == [] and len(lengths) == 8
    assert min(lengths[n] for n in (1, 3, 5, 7)) / max(lengths[n] for n in (0, 2, 4, 6)) > 1.6


def render_folders():
    return set(glob.glob(os.path.join(tempfile.gettempdir(), "ivr-tts-*")))


def _speak_in_fork(synthesizer, queue):
    queue.put(synthesizer.synthesize(voice("en"), "From the work horse.").seconds)


def test_a_forked_process_renders_with_its_own_engine(synthesizer):
    """RQ forks a work horse per job; pyttsx3 hangs in a child forked after its parent used it.
    The forked copy starts an engine process of its own instead of sharing the parent's."""
    synthesizer.synthesize(voice("en"), "In the parent first.")
    before = render_folders()
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_speak_in_fork, args=(synthesizer, queue))
    child.start()
    child.join(timeout=30)
    if child.is_alive():
        child.kill()
        pytest.fail("the forked process hung")
    assert child.exitcode == 0 and queue.get(timeout=1) > 0.5
    assert synthesizer.synthesize(voice("en"), "And the parent still works.").seconds > 0.5
    # The forked process's own engine ended with it and took its folder of renders along.
    deadline = time.monotonic() + 5
    while render_folders() != before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert render_folders() == before
