"""Audio helpers: any WAV in, telephone audio and 16-bit PCM out."""

import io
import wave

import numpy as np
import pytest

from speech.audio import AudioError, load_wav


def wav_bytes(rate: int, seconds: float, channels: int = 1, width: int = 2) -> bytes:
    buffer = io.BytesIO()
    t = np.arange(int(rate * seconds)) / rate
    tone = (0.5 * np.sin(2 * np.pi * 440 * t) * (2 ** (8 * width - 1) - 1)).astype(f"<i{width}")
    with wave.open(buffer, "wb") as w:
        w.setnchannels(channels), w.setsampwidth(width), w.setframerate(rate)
        w.writeframes(np.repeat(tone, channels).tobytes())
    return buffer.getvalue()


@pytest.mark.parametrize("rate,channels", [(8000, 1), (16000, 1), (22050, 1), (44100, 2)])
def test_any_rate_and_channel_count_becomes_telephone_audio(rate, channels):
    audio = load_wav(wav_bytes(rate, 1.5, channels))
    assert audio.rate == rate and audio.seconds == pytest.approx(1.5, abs=1e-3)
    phone = audio.telephone()
    assert phone.rate == 8000 and len(phone.samples) == pytest.approx(12000, abs=2)
    pcm = phone.pcm16(16000)
    assert len(pcm) == pytest.approx(2 * 24000, abs=8)
    peak = np.abs(np.frombuffer(pcm, "<i2")).max()
    assert 15000 < peak < 17500  # a half-scale tone stays half-scale


def test_padding_adds_silence_on_both_sides():
    audio = load_wav(wav_bytes(8000, 1.0)).padded(0.25)
    assert audio.seconds == pytest.approx(1.5) and not audio.samples[:2000].any() and not audio.samples[-2000:].any()


def test_unreadable_audio_is_a_clear_error(tmp_path):
    (tmp_path / "x.wav").write_bytes(b"not audio")
    with pytest.raises(AudioError, match="cannot read audio"):
        load_wav(tmp_path / "x.wav")
