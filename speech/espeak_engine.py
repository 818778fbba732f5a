"""espeak-ng's command line, the local synthesiser: one short process per prompt.

The text goes in on stdin, never in the arguments: any user of the machine can read a process's
arguments (`ps`), and a prompt may name a patient; on stdin, a text that starts with '-' is words,
not an option. Each prompt has a process of its own that is gone when it returns, so threads can
share the synthesiser and a forked process (RQ's work horse) can use it with no special care.
"""

from __future__ import annotations

import subprocess

from speech.audio import Audio, load_wav
from speech.common import AudioError, SynthesisError, Voice

PROGRAM = "espeak-ng"
ESPEAK_RATES = (80, 450)  # words per minute espeak-ng speaks at (it clamps anything else)
RENDER_TIMEOUT = 10.0     # seconds for one prompt (a 15-word prompt takes about 25 ms)


class EspeakSynthesizer:
    """Synthesizer that runs the espeak-ng program once per prompt; safe to share between
    threads and processes."""

    name = "espeak-ng"

    def __init__(self, program: str = PROGRAM, timeout: float = RENDER_TIMEOUT) -> None:
        self.program = program
        self.timeout = timeout
        self._voices: frozenset[str] | None = None

    def voices(self) -> frozenset[str]:
        """The voices espeak-ng offers here, by file id and language ('gmw/en-us', 'en-us', 'ko')."""
        if self._voices is None:
            listing = self._run([self.program, "--voices"], b"")
            self._voices = parse_voices(listing.decode("utf-8", errors="replace"))
        return self._voices

    def command(self, voice: Voice) -> list[str]:
        """The arguments for one prompt: UTF-8 text from stdin, a voice, a rate, WAV to stdout."""
        return [self.program, "--stdin", "-b", "1", "-v", voice.name.lower(), "-s", str(voice.rate),
                "--stdout"]

    def synthesize(self, voice: Voice, text: str) -> Audio:
        """Speak text in voice at voice.rate words per minute; 22.05 kHz mono audio."""
        if not text.strip():
            raise SynthesisError("nothing to say: the text is empty")
        if not ESPEAK_RATES[0] <= voice.rate <= ESPEAK_RATES[1]:
            raise SynthesisError(f"rate {voice.rate} is outside espeak-ng's {ESPEAK_RATES[0]}-"
                                 f"{ESPEAK_RATES[1]} words per minute")
        if voice.name.lower() not in self.voices():
            raise SynthesisError(f"espeak-ng has no voice {voice.name!r} (see `espeak-ng --voices`)")
        wav = self._run(self.command(voice), text.encode("utf-8"))
        try:
            audio = load_wav(wav)
        except AudioError:
            raise SynthesisError(f"espeak-ng wrote {len(wav)} bytes that are not WAV audio") from None
        if not len(audio.samples):
            raise SynthesisError("espeak-ng wrote no audio")
        return audio

    def close(self) -> None:
        """Nothing to release: each prompt's process has ended by the time it returns."""

    def _run(self, argv: list[str], stdin: bytes) -> bytes:
        """Run espeak-ng with stdin; its stdout, or a SynthesisError saying what went wrong."""
        try:
            done = subprocess.run(argv, input=stdin, capture_output=True, timeout=self.timeout,
                                  check=False)
        except FileNotFoundError:
            raise SynthesisError(f"{self.program} is not installed (Debian: apt-get install "
                                 f"espeak-ng)") from None
        except subprocess.TimeoutExpired:  # run() has killed it
            raise SynthesisError(f"espeak-ng did not finish within {self.timeout:g} s; stopped") from None
        if done.returncode != 0:
            reason = done.stderr.decode("utf-8", errors="replace").strip().splitlines()
            raise SynthesisError(f"espeak-ng failed (exit status {done.returncode}): "
                                 f"{reason[0][:200] if reason else 'no message'}")
        return done.stdout


def parse_voices(listing: str) -> frozenset[str]:
    """The file ids and languages of `espeak-ng --voices` (columns: Pty, Language, Age/Gender,
    VoiceName, File, Other Languages), lower-cased as espeak-ng matches them."""
    found = set()
    for line in listing.splitlines()[1:]:
        columns = line.split()
        if len(columns) >= 5:
            found.update((columns[1].lower(), columns[4].lower()))
    return frozenset(found)
