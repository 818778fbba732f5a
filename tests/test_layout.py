"""Project rules that keep the layout safe: no stdlib shadowing, a pure flow engine."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN_IN_FLOWS = ("flask", "sqlalchemy", "redis", "rq", "twilio.rest", "requests", "ivr", "outbound")


def test_no_top_level_package_shadows_the_standard_library():
    """A top-level `queue/` would break `import redis` (redis imports the stdlib queue module)."""
    packages = [p.name for p in ROOT.iterdir() if (p / "__init__.py").exists() and p.name != "tests"]
    assert packages, "no packages found"
    assert sorted(set(packages) & sys.stdlib_module_names) == []


def test_call_flows_source_imports_no_io_library():
    for path in (ROOT / "call_flows").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert not name.startswith(FORBIDDEN_IN_FLOWS), f"{path.name} imports {name}"


def test_importing_call_flows_loads_no_io_library():
    code = ("import sys, call_flows, call_flows.twiml, prompts; "
            "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in "
            "{'flask','sqlalchemy','redis','rq','requests'} or m.startswith('twilio.rest'))))")
    loaded = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                            check=True).stdout.strip()
    assert loaded == ""
