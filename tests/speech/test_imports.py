"""Every speech module imports on its own, first, in a fresh interpreter: no import circle, and
the shared types and errors live in a leaf module that imports nothing else of ours."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODULES = sorted(f"speech.{p.stem}" for p in (ROOT / "speech").glob("*.py") if p.stem != "__init__")


def test_the_module_list_is_not_empty():
    assert "speech.common" in MODULES and "speech.synthesis" in MODULES and len(MODULES) >= 8


@pytest.mark.parametrize("module", MODULES)
def test_each_speech_module_imports_first_in_a_fresh_interpreter(module):
    done = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_shared_types_module_imports_nothing_of_ours():
    tree = ast.parse((ROOT / "speech" / "common.py").read_text())
    imported = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    imported += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    ours = {"speech", "ivr", "outbound", "call_flows", "prompts"}
    assert [name for name in imported if name.split(".")[0] in ours] == []


def test_errors_share_one_root_and_the_synthesiser_error_is_not_the_recognisers():
    from speech import common, recognizer, synthesis

    assert issubclass(common.SynthesisError, common.SpeechError)
    assert issubclass(common.AudioError, common.SpeechError)
    assert synthesis.SynthesisError is common.SynthesisError
    assert "SynthesisError" not in vars(recognizer)
