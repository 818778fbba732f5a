"""pyttsx3 over libespeak-ng, the local synthesiser, run in a child process of its own.

Why a child process: pyttsx3's espeak driver runs espeak in its asynchronous mode, with a thread
of espeak's own; a process forked after that thread started hangs on its first render (RQ forks
a work horse per job), and the library is not thread-safe. The child is started with exec (never
forked from a process that holds espeak), takes one request at a time, and is killed and
replaced if it stops answering.

Why the waits in `_Renderer`: the driver queues a rate change and the synthesis on espeak's
thread, and every runAndWait() begins with stop(), which calls espeak_Cancel() whenever espeak
is still busy. Cancel() drops the queued rate change (the old rate comes back) and, with the
`_stopping` flag it leaves behind, can drop the synthesis too: wrong-length and empty files, in
every language, depending on timing. Waiting until espeak is idle before each call means Cancel()
is never needed; the voice and the rate are then read back before anything is synthesised.
The driver also never forgets its last text and file, so every render goes to a fresh path.
"""

from __future__ import annotations

import atexit
import json
import os
import selectors
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from speech.audio import Audio, load_wav
from speech.common import AudioError, SynthesisError, Voice

ESPEAK_RATES = (80, 450)  # words per minute espeak accepts
START_TIMEOUT = 10.0      # seconds for the child to import pyttsx3 and warm espeak up (0.2 s)
RENDER_TIMEOUT = 10.0     # seconds for one prompt (a 15-word prompt takes about 20 ms)


class Pyttsx3Synthesizer:
    """Synthesizer backed by a pyttsx3 child process; safe to share between threads. The child
    writes each render into a private folder of its own, which it removes when it ends."""

    name = "pyttsx3"

    def __init__(self, render_timeout: float = RENDER_TIMEOUT) -> None:
        self.render_timeout = render_timeout
        self._lock = threading.Lock()
        self._child: subprocess.Popen | None = None
        self._pid = os.getpid()
        self._folder: str | None = None
        self._voices: frozenset[str] = frozenset()
        self._count = 0
        atexit.register(self.close)

    def voices(self) -> frozenset[str]:
        """The voice ids espeak-ng offers here (e.g. 'gmw/en-us', 'roa/es-419', 'ko')."""
        with self._lock:
            self._ensure_child()
            return self._voices

    def synthesize(self, voice: Voice, text: str) -> Audio:
        """Speak text in voice at voice.rate words per minute; 22.05 kHz mono audio."""
        if not text.strip():
            raise SynthesisError("nothing to say: the text is empty")
        if not ESPEAK_RATES[0] <= voice.rate <= ESPEAK_RATES[1]:
            raise SynthesisError(f"rate {voice.rate} is outside espeak's {ESPEAK_RATES[0]}-"
                                 f"{ESPEAK_RATES[1]} words per minute")
        with self._lock:
            self._ensure_child()
            if voice.name.lower() not in self._voices:
                raise SynthesisError(f"espeak-ng has no voice {voice.name!r} (see `espeak-ng --voices`)")
            self._count += 1
            path = Path(self._folder) / f"{self._count}.wav"
            reply = self._ask({"voice": voice.name.lower(), "rate": voice.rate, "text": text,
                               "name": path.name}, self.render_timeout)
            try:
                if not reply.get("ok"):
                    raise SynthesisError(f"pyttsx3 could not render: {reply.get('error', 'no reason given')}")
                return load_wav(path)
            except AudioError as exc:
                raise SynthesisError(f"pyttsx3 wrote unreadable audio: {exc}") from None
            finally:
                path.unlink(missing_ok=True)

    def close(self) -> None:
        """Stop the child process (it is started again on the next render)."""
        with self._lock:
            self._forget_if_forked()
            self._stop_child()

    # --- the child process -------------------------------------------------------------------

    def _forget_if_forked(self) -> None:
        """In a forked copy of this object the child process is the parent's: leave it alone."""
        if os.getpid() != self._pid:
            self._child, self._folder, self._pid = None, None, os.getpid()

    def _ensure_child(self) -> None:
        self._forget_if_forked()
        if self._child is not None and self._child.poll() is None:
            return
        self._stop_child()
        self._child = subprocess.Popen(
            [sys.executable, "-m", "speech.pyttsx3_engine"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=str(Path(__file__).parent.parent),
            close_fds=True)
        hello = self._read_reply(START_TIMEOUT)
        if not hello.get("ok"):
            self._stop_child()
            raise SynthesisError(f"the synthesiser did not start: {hello.get('error', 'no reason given')}")
        self._voices, self._folder = frozenset(hello["voices"]), hello["folder"]

    def _ask(self, request: dict, timeout: float) -> dict:
        try:
            self._child.stdin.write((json.dumps(request) + "\n").encode("ascii"))
            self._child.stdin.flush()
        except OSError:
            self._stop_child()
            raise SynthesisError("the synthesiser process has gone away") from None
        return self._read_reply(timeout)

    def _read_reply(self, timeout: float) -> dict:
        with selectors.DefaultSelector() as selector:
            selector.register(self._child.stdout, selectors.EVENT_READ)
            if not selector.select(timeout):
                self._stop_child()
                raise SynthesisError(f"the synthesiser did not answer within {timeout:.0f} s; restarted")
        line = self._child.stdout.readline()
        try:
            return json.loads(line)
        except ValueError:
            self._stop_child()  # out of step with the child: start afresh next time
            raise SynthesisError("the synthesiser process ended or answered nonsense; restarted") from None

    def _stop_child(self) -> None:
        child, self._child = self._child, None
        if child is not None:
            try:
                child.stdin.close()
                child.wait(timeout=2)
            except (OSError, subprocess.TimeoutExpired):
                child.kill()
                child.wait()
            child.stdout.close()
        if self._folder:  # the child removes it on its way out, unless it was killed
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None


class _Renderer:
    """pyttsx3's engine driven so that each render gets the voice, rate and text it asked for.
    Lives only in the child process."""

    SETTLE_TIMEOUT = 5.0

    def __init__(self) -> None:
        import ctypes

        import pyttsx3
        from pyttsx3.drivers import _espeak

        self._espeak = _espeak
        self.engine = pyttsx3.init("espeak")
        # pyttsx3 declares espeak_GetParameter without its `current` argument, so its rate reads
        # back either the default or the current value; this reads the current one.
        self._get_parameter = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_int)(
            ("espeak_GetParameter", _espeak.dll))
        self._finished = threading.Event()
        self._completed = False
        self.engine.connect("finished-utterance", self._on_finished)
        self._wait_idle(include_engine=False)
        self.engine.runAndWait()  # once, with nothing queued, so later property changes apply at once
        self._wait_idle()
        self.voices = sorted(v.id for v in self.engine.getProperty("voices"))

    def _on_finished(self, name=None, completed=True, **_):
        self._completed = completed
        self._finished.set()

    def _wait_idle(self, timeout: float | None = None, include_engine: bool = True) -> None:
        deadline = time.monotonic() + (timeout or self.SETTLE_TIMEOUT)
        while self._espeak.IsPlaying() or (include_engine and self.engine.isBusy()):
            if time.monotonic() > deadline:
                raise RuntimeError("espeak did not become idle")
            time.sleep(0.0005)

    def render(self, voice: str, rate: int, text: str, path: str) -> None:
        """Write text spoken in voice at rate to path (22.05 kHz 16-bit mono WAV)."""
        engine = self.engine
        self._wait_idle()
        engine.setProperty("voice", voice)  # applied at once, on this thread
        if engine.getProperty("voice") != voice:  # pyttsx3 swallows an unknown voice
            raise RuntimeError(f"voice {voice} was not applied")
        for _ in range(3):
            engine.setProperty("rate", rate)  # queued on espeak's thread: let it land
            self._wait_idle()
            if self._get_parameter(self._espeak.RATE, 1) == rate:
                break
        else:
            raise RuntimeError(f"rate {rate} was not applied")
        self._finished.clear()
        engine.save_to_file(text, path)
        engine.runAndWait()
        if not self._finished.wait(RENDER_TIMEOUT):
            raise RuntimeError("espeak never finished the utterance")
        self._wait_idle(RENDER_TIMEOUT)
        if not self._completed:
            raise RuntimeError("the utterance was cancelled")
        if not os.path.exists(path) or os.path.getsize(path) <= 44:
            raise RuntimeError("espeak wrote no audio")


def _serve() -> None:
    """The child: one JSON request per line on stdin, one JSON reply per line on the real stdout.
    pyttsx3 prints to stdout, so the protocol gets a private copy and stdout goes nowhere.
    Renders go to a private folder (mode 0700) that is removed when stdin closes."""
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    sys.stdout = open(os.devnull, "w")

    def reply(**fields) -> None:
        protocol.write(json.dumps(fields) + "\n")

    folder = tempfile.mkdtemp(prefix="ivr-tts-")
    try:
        try:
            renderer = _Renderer()
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises
            reply(ok=False, error=f"{type(exc).__name__}: {exc}")
            return
        reply(ok=True, voices=renderer.voices, folder=folder)
        for line in sys.stdin.buffer:
            request = json.loads(line.decode("utf-8"))
            path = os.path.join(folder, os.path.basename(request["name"]))
            try:
                renderer.render(request["voice"], int(request["rate"]), request["text"], path)
            except Exception as exc:  # noqa: BLE001 - one failed prompt must not end the process
                reply(ok=False, error=f"{type(exc).__name__}: {exc}")
            else:
                reply(ok=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    _serve()
