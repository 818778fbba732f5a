"""The prompt audio cache: secret keys, atomic files, personal prompts kept briefly."""

import datetime as dt
import os
import stat

import pytest
import soundfile

from speech.audio_cache import PromptAudioCache
from speech.common import SynthesisError, Voice
from speech.synthesis import RecordingSynthesizer, render

EN = Voice("en", "gmw/en-us", 150)


@pytest.fixture
def cache(tmp_path):
    return PromptAudioCache(tmp_path / "audio", "secret-one")


def test_a_key_names_language_voice_rate_and_words_and_needs_the_secret(cache, tmp_path):
    key = cache.key(EN, "Hello.")
    assert len(key) == 64 and key == cache.key(EN, "Hello.")
    others = {cache.key(Voice("es", "gmw/en-us", 150), "Hello."), cache.key(Voice("en", "roa/fr", 150), "Hello."),
              cache.key(Voice("en", "gmw/en-us", 120), "Hello."), cache.key(EN, "Hello!"),
              PromptAudioCache(tmp_path, "secret-two").key(EN, "Hello.")}
    assert key not in others and len(others) == 5


def test_render_synthesises_once_and_stores_telephone_audio_with_a_note(cache):
    synthesizer = RecordingSynthesizer()
    first = render(synthesizer, cache, EN, "Your appointment is confirmed.", personal=False)
    again = render(synthesizer, cache, EN, "Your appointment is confirmed.", personal=False)
    assert (first.made, again.made, first.key) == (True, False, again.key)
    assert synthesizer.requests == [(EN, "Your appointment is confirmed.")]
    info = soundfile.info(str(cache.find(first.key)))
    assert (info.samplerate, info.channels, info.subtype, info.format) == (8000, 1, "ULAW", "WAV")
    assert info.duration == pytest.approx(60 * 4 / 150, abs=0.01)
    assert cache.note(first.key) == {"language": "en", "voice": "gmw/en-us", "rate": 150,
                                     "text": "Your appointment is confirmed.", "seconds": 1.6,
                                     "engine": "recording"}


def test_an_engine_that_makes_no_sound_is_an_error_and_nothing_is_stored(cache):
    class Mute(RecordingSynthesizer):
        def synthesize(self, voice, text):
            audio = super().synthesize(voice, text)
            return type(audio)(audio.samples[:10], audio.rate)

    with pytest.raises(SynthesisError, match="produced no audio"):
        render(Mute(), cache, EN, "Hello.", personal=False)
    assert cache.find(cache.key(EN, "Hello.")) is None


def test_personal_prompts_are_private_and_pruned_after_their_lifetime(cache):
    synthesizer = RecordingSynthesizer()
    personal = render(synthesizer, cache, EN, "If you are Jane, press 1.", personal=True)
    shared = render(synthesizer, cache, EN, "Goodbye.", personal=False)
    path = cache.find(personal.key)
    assert path.parent.name == "personal"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    now = dt.datetime.now(dt.timezone.utc)
    assert cache.prune(now) == 0  # young
    old = (now - dt.timedelta(hours=7)).timestamp()
    for file in path.parent.glob(f"{personal.key}.*"):
        os.utime(file, (old, old))
    assert cache.prune(now) == 0, "pruned again within ten minutes of the last scan"
    assert cache.prune(now + dt.timedelta(minutes=11)) == 1
    assert cache.find(personal.key) is None and cache.note(personal.key) is None
    assert cache.find(shared.key) is not None


def test_a_personal_prompt_found_again_is_young_again(cache):
    """A call about to play a prompt rendered hours ago must not lose it to the next prune."""
    synthesizer = RecordingSynthesizer()
    rendered = render(synthesizer, cache, EN, "If you are Jane, press 1.", personal=True)
    old = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=5, minutes=55)).timestamp()
    for file in cache.find(rendered.key).parent.glob(f"{rendered.key}.*"):
        os.utime(file, (old, old))
    assert render(synthesizer, cache, EN, "If you are Jane, press 1.", personal=True).made is False
    assert cache.prune(dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=30)) == 0
    assert cache.find(rendered.key) is not None and len(synthesizer.requests) == 1


def test_the_note_of_a_personal_prompt_keeps_its_words_only_where_asked(tmp_path):
    synthesizer = RecordingSynthesizer()
    production = PromptAudioCache(tmp_path / "p", "k")
    development = PromptAudioCache(tmp_path / "d", "k", keep_personal_text=True)
    for cache, has_text in [(production, False), (development, True)]:
        personal = render(synthesizer, cache, EN, "If you are Jane, press 1.", personal=True)
        shared = render(synthesizer, cache, EN, "Goodbye.", personal=False)
        assert ("text" in cache.note(personal.key)) is has_text
        assert cache.note(shared.key)["text"] == "Goodbye."
        assert "Jane" not in cache.find(personal.key).with_suffix(".json").read_text() or has_text


@pytest.mark.parametrize("key", ["", "../../etc/passwd", "A" * 64, "0" * 63])
def test_find_refuses_anything_but_a_key(cache, key):
    assert cache.find(key) is None
