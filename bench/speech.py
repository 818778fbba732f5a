"""Speech on real recordings, then prompt synthesis: accuracy, false accepts, speed, memory.

Recognition (bench/speech_recognition.py): Whisper, the English engine, beside pocketsphinx (the
engine it replaced) in the same run, on the development clips in ../shared/speech (real human
speech, see its README) made telephone audio (8 kHz, mu-law) and centred in 2 s, with generated
DTMF keys, tones, hum and noise beside the set's own noise clips. Whisper's per-question
thresholds are fitted and judged by speaker-grouped cross-validation (the figures against the
aims are the held-out ones; the threshold fitted on every clip is what speech/whisper_thresholds.py
keeps). Then Spanish, French and Korean on espeak-ng's voice (synthetic: a smoke test and the
Korean engine comparison, Whisper base beside Vosk), digit strings joined from real digits, and
dates said by espeak-ng. The summary checks Whisper against the aims: yes/no/stop >= 98%, digits
>= 96%, false accepts <= 3%, p95 <= 100 ms per 2 s answer.
Last, the synthesiser: every prompt of every catalogue rendered as the outbound job renders them,
with the time per prompt and the real-time factor, then whole reminder jobs (their personal
prompts); beside it, in the same run, pyttsx3 (the engine it replaced) when that is installed.

Run: .venv/bin/python bench/speech.py [--clips DIR] [--synthesis-only | --recognition-only | --english-times]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import speech_recognition as recognition  # noqa: E402
from speech import load_wav  # noqa: E402
from speech.common import SpeechModels  # noqa: E402

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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=Path, default=ROOT.parent / "shared" / "speech",
                        help="folder of labelled clips (default ../shared/speech)")
    parser.add_argument("--vosk-models", type=Path, default=ROOT / "instance" / "vosk-models",
                        help="installed Vosk models, a folder per language (default instance/vosk-models)")
    parser.add_argument("--whisper-models", type=Path, default=ROOT / "instance" / "whisper-models",
                        help="installed Whisper conversions (default instance/whisper-models; else the packaged ones)")
    parser.add_argument("--synthesis-only", action="store_true", help="only the synthesis tables")
    parser.add_argument("--recognition-only", action="store_true", help="only the recognition tables")
    parser.add_argument("--english-times", action="store_true",
                        help="only English as the app runs it, Whisper beside pocketsphinx (a minute or two, "
                             "for timing on a quiet machine; no cross-validation)")
    args = parser.parse_args(argv)
    if args.synthesis_only:
        synthesis()
        return 0
    if not (args.clips / "yes").is_dir():
        print(f"no clips at {args.clips}", file=sys.stderr)
        return 2
    models = SpeechModels(args.vosk_models, whisper_dir=args.whisper_models)
    rows = recognition.english(args.clips, models, cross_validate_thresholds=not args.english_times)
    if not args.english_times:
        rows += recognition.other_languages(models)
        recognition.values(args.clips, models)
    recognition.summary(rows)
    if not (args.recognition_only or args.english_times):
        synthesis()
    return 0


if __name__ == "__main__":
    sys.exit(main())
