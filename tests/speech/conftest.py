"""Real clips for speech tests: ../shared/speech (real human recordings) and espeak-ng phrases."""

import shutil
import subprocess
from pathlib import Path

import pytest

CLIPS = Path(__file__).resolve().parents[3] / "shared" / "speech"


@pytest.fixture(scope="session")
def clips() -> Path:
    if not (CLIPS / "yes").is_dir():
        pytest.skip(f"the development speech clips are not at {CLIPS}")
    return CLIPS


@pytest.fixture(scope="session")
def korean(tmp_path_factory):
    """Korean words spoken by espeak-ng into WAV files (22.05 kHz, as espeak-ng writes them)."""
    if not shutil.which("espeak-ng"):
        pytest.skip("espeak-ng is not installed (make test installs it)")
    folder = tmp_path_factory.mktemp("korean")

    def speak(word: str) -> Path:
        path = folder / f"{abs(hash(word))}.wav"
        if not path.exists():
            subprocess.run(["espeak-ng", "-v", "ko", "-w", str(path), word], check=True)
        return path

    return speak
