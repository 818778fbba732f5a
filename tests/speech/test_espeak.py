"""The real synthesiser: the espeak-ng program, one process per prompt. Rates, languages and
words are checked by measuring the audio and by recognising it with the real recognisers."""

import multiprocessing
import subprocess
import threading

import pytest

import prompts
from speech import Recognition, recognizer_for
from speech.audio import load_wav
from speech.audio_cache import PromptAudioCache
from speech.common import SynthesisError, Voice
from speech.espeak_engine import EspeakSynthesizer
from speech.intents import intent_of, phrases_for
from speech.synthesis import render

SENTENCES = {
    "en": "Thank you for calling the clinic. Please press one to confirm your visit.",
    "es": "Gracias por llamar a la clínica. Por favor, oprima uno para confirmar su cita.",
    "fr": "Merci d'avoir appelé la clinique. Appuyez sur un pour confirmer votre visite.",
    "ko": "병원에 전화해 주셔서 감사합니다. 예약을 확인하시려면 일번을 눌러 주십시오.",
}


@pytest.fixture(scope="module")
def synthesizer():
    return EspeakSynthesizer()


def voice(language, rate=None):
    catalogue = prompts.load(language)
    return Voice(language, catalogue.tts_voice, rate or catalogue.tts_rate)


def english_heard(audio, models):
    """The intent the English recogniser hears in audio (trusted or not: pocketsphinx is unsure
    of espeak's robotic voice, and hears its "stop", "cancel" or "confirm" as nothing at all)."""
    result = recognizer_for("en", models).recognize(audio.telephone(),
                                            phrases_for("en", ["yes", "no", "cancel", "repeat"]))
    return intent_of("en", Recognition(result.text or result.rejected, 1.0, "-", 0, 0))


def test_every_catalogue_has_a_voice_espeak_offers(synthesizer):
    for language in prompts.available_languages():
        assert prompts.load(language).tts_voice in synthesizer.voices(), language


def test_a_slower_rate_gives_longer_speech_in_every_language(synthesizer):
    """Voices and rates alternate on every render, as a batch of calls makes them: a rate that
    did not apply would show as equal lengths."""
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
def test_english_prompts_say_their_words(synthesizer, speech_models, tmp_path, word):
    """Rendered through the cache to telephone mu-law, then decoded by the English recogniser."""
    cache = PromptAudioCache(tmp_path, "k")
    rendered = render(synthesizer, cache, voice("en"), word, personal=False)
    assert english_heard(load_wav(cache.find(rendered.key)), speech_models) == word


@pytest.mark.parametrize("word,intent", [("네", "yes"), ("아니요", "no")])
def test_korean_prompts_are_spoken_in_korean(synthesizer, speech_models, korean_model, word, intent):
    """Heard by the Korean Vosk model (Whisper base, which answers Korean calls where it is
    installed, misses espeak-ng's short "아니요" at this rate)."""
    from speech.recognizer import vosk_model_dir
    from speech.vosk_engine import VoskEngine

    audio = synthesizer.synthesize(voice("ko"), word).telephone()
    engine = VoskEngine("ko", vosk_model_dir("ko", speech_models))
    result = engine.recognize(audio, phrases_for("ko", ["yes", "no", "stop"]))
    assert intent_of("ko", result) == intent


def test_text_that_looks_like_options_or_names_a_patient_is_spoken_and_never_in_the_arguments(
        synthesizer, speech_models, monkeypatch):
    """The text goes to espeak-ng on stdin: as an argument, "--help" would print help instead of
    speaking, "-v xx" would pick a voice, and a patient's name would be readable in `ps`."""
    seen = []
    real_run = subprocess.run

    def noting_run(argv, **kwargs):
        seen.append((list(argv), kwargs.get("input")))
        return real_run(argv, **kwargs)

    monkeypatch.setattr("speech.espeak_engine.subprocess.run", noting_run)
    texts = ["--help", "-v xx/nowhere -s 80 yes", "If you are Jane Doe, press 1."]
    lengths = {text: synthesizer.synthesize(voice("en"), text).seconds for text in texts}
    assert lengths["--help"] > 0.5 and lengths["-v xx/nowhere -s 80 yes"] > 1.5
    assert lengths["If you are Jane Doe, press 1."] > 1.5
    prompts_run = [(argv, stdin) for argv, stdin in seen if "--stdout" in argv]
    assert [stdin.decode() for _, stdin in prompts_run] == texts
    for argv, _ in prompts_run:
        assert not any(word in arg for arg in argv for word in ("help", "nowhere", "Jane", "Doe", "press"))
    assert english_heard(synthesizer.synthesize(voice("en"), "-no"), speech_models) == "no"


def test_bad_requests_are_clear_errors(synthesizer):
    with pytest.raises(SynthesisError, match="no voice 'xx/nowhere'"):
        synthesizer.synthesize(Voice("en", "xx/nowhere", 150), "Hello.")
    with pytest.raises(SynthesisError, match="rate 20 is outside"):
        synthesizer.synthesize(voice("en", 20), "Hello.")
    with pytest.raises(SynthesisError, match="the text is empty"):
        synthesizer.synthesize(voice("en"), "  ")
    assert synthesizer.synthesize(voice("en"), "Still working.").seconds > 0.5


def test_espeak_failing_hanging_or_missing_is_a_clear_error():
    failing = EspeakSynthesizer()
    failing._voices = failing.voices() | {"xx/nowhere"}  # listed, but espeak-ng cannot load it
    with pytest.raises(SynthesisError, match=r"espeak-ng failed \(exit status 1\): .*voice does not exist"):
        failing.synthesize(Voice("en", "xx/nowhere", 150), "Hello.")
    slow = EspeakSynthesizer(timeout=0.05)  # far too short for a minute of speech
    with pytest.raises(SynthesisError, match=r"did not finish within 0.05 s; stopped"):
        slow.synthesize(voice("en"), "Please hold the line. " * 200)
    with pytest.raises(SynthesisError, match="no-such-espeak is not installed"):
        EspeakSynthesizer(program="no-such-espeak").voices()


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


def _speak_in_fork(synthesizer, queue):
    queue.put(synthesizer.synthesize(voice("en"), "From the work horse.").seconds)


def test_a_forked_process_renders_with_the_parents_synthesiser(synthesizer):
    """RQ forks a work horse per job, after the parent may have rendered."""
    synthesizer.synthesize(voice("en"), "In the parent first.")
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
