"""Whisper (CTranslate2, int8 on the CPU), constrained to each question's phrases.

Plain transcription and then matching words is weak on a phone line (about 88% on yes/no/stop
and 57% on digits, measured here). Instead, for each answer:

1. A voice-activity gate (Silero VAD, whose model ships inside faster-whisper): a recording in
   which no 32 ms frame reaches VAD_GATE is no answer at all (DTMF, tones, most noise, silence),
   and is never decoded. Otherwise the audio is cut to where the speech is, with SPEECH_MARGIN of
   quiet around it (added as silence where the recording has none).
2. The cut is encoded once in a window of WINDOW_SECONDS (Whisper's own is 30 s, mostly padding
   here; a longer cut gets LONG_WINDOW_SECONDS and is truncated there: the first words decide),
   and the decoder is started with a short biasing prompt that lists the question's own
   phrases, then the emergency ones ("Yes. Yeah. No. Stop. Emergency. Chest pain. ...").
3. Every phrase of the grammar is scored as the probability the model gives it as the first
   words of the answer, token by token, as a whole sequence ("chest pain"), summed over its
   spellings (" yes", " Yes", "yes", a digit's numeral, Spanish and French without accents).
   A spelling of several tokens whose first token is below PRUNE_BELOW is not followed, so most
   answers need one decoder pass, and none more than two.
4. The phrases of one intent add up ("yeah" and "yes" are both yes), and the best intent is
   accepted when its probability reaches the question's threshold (speech/whisper_thresholds.py,
   fitted by bench/speech.py with speaker-grouped cross-validation). Below it, the phrase comes
   back as `rejected`.
5. Emergency phrases are scored on every answer (every grammar holds them), and when nothing is
   accepted, a free transcript of the answer is searched for them too.

One model per process (per conversion: Spanish and French share `base`), shared by every thread;
at most `decodes` answers are decoded at once, each on `threads` CPU threads, the rest wait.
The model is read from verified bytes (speech/whisper_models.py); no name is ever given to
faster-whisper, so it never looks for a hub.
"""

from __future__ import annotations

import functools
import math
import re
import threading
import time
import unicodedata
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from speech.audio import Audio
from speech.common import Recognition, SpeechError, SpeechModels
from speech.intents import PHRASES
from speech.whisper_models import WhisperSource
from speech.whisper_thresholds import threshold_for

MODEL_RATE = 16000
# The encoder's window for an answer. bench/speech.py on the development clips: 3 s and 5 s were
# as accurate (yes/no/stop 61 of 62 either way), 3 s costs about 60% of 5 s.
WINDOW_SECONDS = 3
LONG_WINDOW_SECONDS = 5
VALUE_WINDOW_SECONDS = 10   # for dates and digit strings, which take longer to say
VAD_FRAME = 512             # samples per Silero VAD frame at 16 kHz (32 ms)
# On the development clips the loudest frame of every answer scored 0.20 or more (telephone audio
# lowers Silero's confidence well under its usual 0.5), of every noise clip 0.072 or less; 60 Hz
# hum reaches 0.16 and is left to the thresholds.
VAD_GATE = 0.12
SPEECH_MARGIN = (0.3, 0.5)  # seconds kept before the first and after the last speech frame
PRUNE_BELOW = 0.01          # a partial phrase less likely than this is not followed further
VALUE_TOKENS = 40           # a date or a digit string is far shorter
VALUE_BEAM = 5
FREE_TOKENS = 24            # the longest free transcript looked at for emergency phrases


@dataclass(frozen=True)
class Transcript:
    """A transcript (after a prompt, perhaps limited to some tokens) and its mean token probability."""

    text: str
    confidence: float
    speech: bool                 # False: the gate heard no speech, nothing was decoded
    audio_seconds: float
    processing_seconds: float


class LoadedWhisper:
    """One conversion in memory, shared by every language and thread that uses it."""

    def __init__(self, source: WhisperSource, decodes: int, threads: int) -> None:
        from faster_whisper import WhisperModel
        from faster_whisper.vad import get_vad_model

        files = dict(source.read())  # verified bytes: what was checked is what runs
        vocabulary = files["vocabulary.txt"].count(b"\n") + (not files["vocabulary.txt"].endswith(b"\n"))
        try:
            model = WhisperModel(source.spec.name, device="cpu", compute_type="int8",
                                 cpu_threads=threads, num_workers=decodes, files=files)
        except (RuntimeError, ValueError) as exc:
            raise SpeechError(f"Whisper model {source.spec.name} at {source.where} cannot be "
                              f"loaded: {exc}") from None
        self.spec, self.where = source.spec, source.where
        self.model = model.model
        self.features = model.feature_extractor
        self.tokenizer = model.hf_tokenizer
        self.vocabulary = vocabulary
        self.vad = get_vad_model()
        self.slots = threading.BoundedSemaphore(max(1, decodes))
        self._id = self.tokenizer.token_to_id
        self.sot, self.prev = self._id("<|startoftranscript|>"), self._id("<|startofprev|>")
        self.no_timestamps, self.eot = self._id("<|notimestamps|>"), self._id("<|endoftext|>")

    def start(self, language: str) -> list[int]:
        """The start-of-transcript tokens for a language."""
        if not self.spec.multilingual:
            return [self.sot, self.no_timestamps]
        return [self.sot, self._id(f"<|{language}|>"), self._id("<|transcribe|>"), self.no_timestamps]

    def encode_text(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False).ids


_lock = threading.Lock()
_loaded: dict[tuple[str, str, int, int], LoadedWhisper] = {}


def load(source: WhisperSource, models: SpeechModels) -> LoadedWhisper:
    """The conversion loaded once per process (and per folder and limits)."""
    key = (source.spec.name, source.where, models.whisper_decodes, models.whisper_threads)
    with _lock:
        if key not in _loaded:
            _loaded[key] = LoadedWhisper(source, models.whisper_decodes, models.whisper_threads)
        return _loaded[key]


class WhisperEngine:
    """Recognises answers in one language with a shared Whisper model."""

    name = "whisper"

    def __init__(self, language: str, loaded: LoadedWhisper) -> None:
        if language != "en" and not loaded.spec.multilingual:
            raise SpeechError(f"Whisper {loaded.spec.name} is English only, not {language!r}")
        self.language, self.loaded = language, loaded
        self.model_name = loaded.spec.name

    # -- audio ------------------------------------------------------------------------------

    def speech_cut(self, audio: Audio, max_seconds: float) -> np.ndarray | None:
        """The 16 kHz samples around the speech in audio, or None when the gate hears none."""
        samples = audio.resampled(MODEL_RATE).samples.astype(np.float32)
        if len(samples) < VAD_FRAME:
            return None
        padded = np.pad(samples, (0, -len(samples) % VAD_FRAME))
        probabilities = self.loaded.vad(padded)
        probabilities = np.asarray(probabilities).reshape(-1)
        speech = np.flatnonzero(probabilities >= VAD_GATE)
        if speech.size == 0:
            return None
        first, last = int(speech[0] * VAD_FRAME), int((speech[-1] + 1) * VAD_FRAME)
        before, after = (int(margin * MODEL_RATE) for margin in SPEECH_MARGIN)
        start, end = max(0, first - before), min(len(samples), last + after)
        # The margins are always there, as silence where the recording had none: a word at the
        # very start of a recording scored near 0 without it ("네" 0.0005, with it 0.94).
        cut = np.concatenate([np.zeros(before - (first - start), np.float32), samples[start:end],
                              np.zeros(max(0, after - (end - last)), np.float32)])
        return cut[:int(max_seconds * MODEL_RATE)]

    def _encode(self, samples: np.ndarray, seconds: int):
        import ctranslate2

        window = np.zeros(seconds * MODEL_RATE, dtype=np.float32)
        window[:len(samples)] = samples
        mel = self.loaded.features(window)[:, :seconds * 100]
        return self.loaded.model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(mel[None])),
                                        to_cpu=True)

    # -- constrained recognition --------------------------------------------------------------

    def recognize(self, audio: Audio, grammar: Sequence[str]) -> Recognition:
        """The grammar phrase heard in audio, or '' when no speech, or nothing sure enough."""
        started = time.perf_counter()
        question = _Question.of(self, tuple(grammar))
        cut = self.speech_cut(audio, LONG_WINDOW_SECONDS)
        if cut is None:
            return Recognition("", 0.0, self.name, audio.seconds, time.perf_counter() - started)
        with self.loaded.slots:
            encoded = self._encode(cut, _window(cut))
            scores = self._score(encoded, question)
            intent, phrase, probability = question.best(scores)
            accepted = probability >= question.threshold or (
                intent == "emergency" and probability >= question.emergency_threshold)
            if not accepted and question.emergencies:
                found = self._emergency_in_free_transcript(encoded, question)
                if found:
                    return Recognition(found, probability, self.name, audio.seconds,
                                       time.perf_counter() - started)
        elapsed = time.perf_counter() - started
        if not accepted:
            return Recognition("", probability, self.name, audio.seconds, elapsed, rejected=phrase)
        return Recognition(phrase, probability, self.name, audio.seconds, elapsed)

    def scores(self, audio: Audio, grammar: Sequence[str]) -> dict[str, float] | None:
        """Each intent's probability for an answer (None: the gate heard no speech). For fitting
        thresholds (bench/speech.py)."""
        question = _Question.of(self, tuple(grammar))
        cut = self.speech_cut(audio, LONG_WINDOW_SECONDS)
        if cut is None:
            return None
        with self.loaded.slots:
            phrase_scores = self._score(self._encode(cut, _window(cut)), question)
        return question.by_intent(phrase_scores)

    def _step(self, encoded, prompt: list[int], forced: list[tuple[int, ...]]) -> list[list[np.ndarray]]:
        """For each forced continuation of the prompt, the log-probabilities of the next token at
        every position along it: before its first token, ..., after its last."""
        import ctranslate2

        if len(forced) > 1:
            encoded = ctranslate2.StorageView.from_array(np.repeat(np.asarray(encoded), len(forced), axis=0))
        # Tokens after the start-of-transcript ones are forced, and their logits come back too;
        # max_length counts the prompt, so this is one step past the longest continuation.
        results = self.loaded.model.generate(
            encoded, [prompt + list(f) for f in forced], max_length=len(prompt) + max(map(len, forced)),
            beam_size=1, return_logits_vocab=True, suppress_blank=False, suppress_tokens=[])
        out = []
        for continuation, result in zip(forced, results):
            steps = []
            for logits in result.logits[0][:len(continuation) + 1]:
                values = np.asarray(logits, dtype=np.float32).reshape(-1)
                top = values.max()
                steps.append(values - (top + np.log(np.exp(values - top).sum())))
            out.append(steps)
        return out

    def _score(self, encoded, question: _Question) -> dict[str, float]:
        """Each phrase's probability as the answer's first words, summed over its spellings. One
        decoder pass gives every first token; one more scores, along each whole sequence, the
        spellings of more than one token whose first token is not unlikely."""
        first = self._step(encoded, question.prompt, [()])[0][0]
        logp = {s: first[s[0]] for s in question.spellings}
        floor = math.log(PRUNE_BELOW)
        longer = [s for s in question.spellings if len(s) > 1 and first[s[0]] > floor]
        if longer:
            for spelling, steps in zip(longer, self._step(encoded, question.prompt, [s[:-1] for s in longer])):
                logp[spelling] = first[spelling[0]] + sum(steps[k][spelling[k]] for k in range(1, len(spelling)))
        for spelling in question.spellings:
            if len(spelling) > 1 and spelling not in longer:
                logp[spelling] = -math.inf
        return {phrase: min(1.0, sum(math.exp(logp[s]) for s in spellings))
                for phrase, spellings in question.phrase_spellings.items()}

    def _emergency_in_free_transcript(self, encoded, question: _Question) -> str:
        """An emergency phrase said anywhere in the answer, by a free transcript."""
        return emergency_in(self._free(encoded, self.loaded.start(self.language), FREE_TOKENS)[0],
                            question.emergencies)

    def _free(self, encoded, prompt: list[int], tokens: int, beam: int = 1,
              suppress: Sequence[int] = (-1,)) -> tuple[str, float]:
        result = self.loaded.model.generate(encoded, [prompt], max_length=len(prompt) + tokens - 1,
                                            beam_size=beam, return_scores=True, suppress_tokens=list(suppress),
                                            no_repeat_ngram_size=4 if beam > 1 else 0)[0]
        ids = [t for t in result.sequences_ids[0] if t < self.loaded.eot]
        score = result.scores[0] if result.scores else -math.inf
        return self.loaded.tokenizer.decode(ids).strip(), math.exp(score) if ids else 0.0

    # -- free transcripts (dates, digit strings) -------------------------------------------------

    def transcribe(self, audio: Audio, prompt: str = "", keep: Callable[[str], bool] | None = None) -> Transcript:
        """A transcript of audio (up to VALUE_WINDOW_SECONDS of its speech), decoded after a
        biasing prompt, with the mean probability of its tokens. With `keep`, only tokens whose
        text (stripped, lower case) it accepts may be written (digits, month names...)."""
        suppress = self._suppressed(keep) if keep is not None else (-1,)
        started = time.perf_counter()
        cut = self.speech_cut(audio, VALUE_WINDOW_SECONDS)
        if cut is None:
            return Transcript("", 0.0, False, audio.seconds, time.perf_counter() - started)
        tokens = ([self.loaded.prev, *self.loaded.encode_text(" " + prompt.strip())] if prompt.strip() else [])
        with self.loaded.slots:
            encoded = self._encode(cut, VALUE_WINDOW_SECONDS)
            text, confidence = self._free(encoded, tokens + self.loaded.start(self.language), VALUE_TOKENS,
                                          beam=VALUE_BEAM, suppress=suppress)
        return Transcript(text, confidence, True, audio.seconds, time.perf_counter() - started)


    @functools.lru_cache(maxsize=16)
    def _suppressed(self, keep: Callable[[str], bool]) -> tuple[int, ...]:
        """Every text token `keep` refuses (special tokens are never written: end of text stays)."""
        decode, eot = self.loaded.tokenizer.decode, self.loaded.eot
        refused = [i for i in range(eot) if not keep(_plain(decode([i])).strip().lower())]
        return tuple(refused) + tuple(range(eot + 1, self.loaded.vocabulary))


def emergency_in(text: str, emergencies: Sequence[str]) -> str:
    """The first emergency phrase said as whole words in a transcript, or ''."""
    words = f" {_normal(text)} "
    return next((p for p in emergencies if f" {_normal(p)} " in words), "")


def _window(cut: np.ndarray) -> int:
    return WINDOW_SECONDS if len(cut) <= WINDOW_SECONDS * MODEL_RATE else LONG_WINDOW_SECONDS


def _normal(text: str) -> str:
    """Lower case, no punctuation but apostrophes, one space between words."""
    text = unicodedata.normalize("NFC", text.lower().replace("’", "'"))
    return " ".join(re.sub(r"[^\w' ]+", " ", text).split())


def _plain(text: str) -> str:
    """Without accents ("sí" -> "si", "répéter" -> "repeter")."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


class _Question:
    """A grammar prepared for one engine: the biasing prompt, each phrase's spellings as token
    sequences, phrase -> intent, the threshold. Kept per (engine, grammar)."""

    def __init__(self, engine: WhisperEngine, grammar: tuple[str, ...]) -> None:
        phrases = list(dict.fromkeys(" ".join(p.split()) for p in grammar if p.strip() and p != "[unk]"))
        if not phrases:
            raise SpeechError("a grammar needs at least one phrase")
        table = PHRASES.get(engine.language, {})
        self.intent = {p: next((i for i, ps in table.items() if p in ps), p) for p in phrases}
        self.emergencies = [p for p in phrases if self.intent[p] == "emergency"]
        asked = [p for p in phrases if self.intent[p] != "emergency"] or phrases
        loaded = engine.loaded
        # The prompt names every phrase, the emergency ones last. Without them, espeak-ng's
        # "chest pain" was heard as an emergency 0 times in 8 (voices and rates), with them 7
        # times, and fewer other words were taken for answers (0 of 192 clips, against 3).
        self.prompt = [loaded.prev, *loaded.encode_text(" " + " ".join(_sentence(p) for p in asked + self.emergencies)),
                       *loaded.start(engine.language)]
        self.phrase_spellings = {p: _spellings(loaded, p, self.intent[p]) for p in phrases}
        self.spellings = sorted({s for ss in self.phrase_spellings.values() for s in ss})
        intents = frozenset(self.intent[p] for p in asked)
        self.threshold = threshold_for(engine.model_name, engine.language, intents)
        self.emergency_threshold = threshold_for(engine.model_name, engine.language, frozenset({"emergency"}))

    @staticmethod
    @functools.lru_cache(maxsize=256)
    def _cached(engine: WhisperEngine, grammar: tuple[str, ...]) -> _Question:
        return _Question(engine, grammar)

    @classmethod
    def of(cls, engine: WhisperEngine, grammar: tuple[str, ...]) -> _Question:
        return cls._cached(engine, grammar)

    def by_intent(self, phrase_scores: dict[str, float]) -> dict[str, float]:
        totals: dict[str, float] = {}
        for phrase, score in phrase_scores.items():
            totals[self.intent[phrase]] = totals.get(self.intent[phrase], 0.0) + score
        return {intent: min(1.0, score) for intent, score in totals.items()}

    def best(self, phrase_scores: dict[str, float]) -> tuple[str, str, float]:
        """(intent, its likeliest phrase, the intent's probability) of the likeliest intent."""
        totals = self.by_intent(phrase_scores)
        intent = max(totals, key=totals.get)
        phrase = max((p for p in phrase_scores if self.intent[p] == intent), key=phrase_scores.get)
        return intent, phrase, totals[intent]


def _sentence(phrase: str) -> str:
    return phrase[:1].upper() + phrase[1:] + "."


def _spellings(loaded: LoadedWhisper, phrase: str, intent: str) -> frozenset[tuple[int, ...]]:
    """The token sequences the model may write a phrase as."""
    forms = {phrase, phrase[:1].upper() + phrase[1:], _plain(phrase), _plain(phrase)[:1].upper() + _plain(phrase)[1:]}
    if intent.isdigit():
        forms.add(intent)
    return frozenset(tuple(loaded.encode_text(lead + form)) for form in forms for lead in (" ", ""))
