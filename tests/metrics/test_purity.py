"""metrics/ is pure Python: no module imports streamlit, directly or through its imports."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODULES = sorted((ROOT / "metrics").rglob("*.py"))


def test_no_metrics_source_mentions_a_streamlit_import():
    offenders = []
    for path in MODULES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n == "streamlit" or n.startswith("streamlit.") or n == "ui" or n.startswith("ui.")
                   for n in names):
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == [], f"metrics must not import streamlit or ui: {offenders}"


def test_importing_every_metrics_module_does_not_load_streamlit():
    names = [".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
             for p in MODULES if p.stem != "__main__"]
    code = ("import importlib, sys\n"
            f"for n in {names!r}: importlib.import_module(n)\n"
            "print('streamlit' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    assert len(names) >= 10
