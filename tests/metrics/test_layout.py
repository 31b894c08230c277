"""The family layout of metrics/ and the import rules it implies (read by an AST walk, so lazy imports inside
functions count too):

* the package root holds at most ten modules (entry points, errors, the KPI registry, the summary);
* each family (``engagement``, ``outcomes``, ``intents``, ``sentiment``, ``funnel``, ``roi``, ``audit``) is a
  package: its ``__init__`` is its compute API, next to ``charts``, ``store`` (persistence) and ``cli``;
* a family's compute never imports persistence (``metrics.store``, a family's ``store``/``cache``/``queue``) or
  a command line module;
* every public module states its ``__all__``;
* no module of metrics/ imports streamlit (tests/metrics/test_purity.py checks the import graph too);
* no module of metrics/ names a page file (``pages/...``): the KPI-to-page map is ``ui/kpi_pages.py``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

METRICS = Path(__file__).resolve().parents[2] / "metrics"
FAMILIES = ("engagement", "outcomes", "intents", "sentiment", "funnel", "roi", "audit")
PERSISTENCE = {"store", "cache", "queue"}  # a family's modules that read or write the store


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every module name imported by ``path`` (``from a import b`` gives ``a`` and ``a.b``), with its line."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            out += [(node.lineno, node.module)] + [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
    return out


def _forbidden(name: str) -> bool:
    parts = name.split(".")
    if parts[0] != "metrics" or len(parts) < 2:
        return False
    if parts[1] == "store" or parts[1].startswith("cli"):
        return True
    return len(parts) >= 3 and parts[1] in FAMILIES and (parts[2] in PERSISTENCE or parts[2] == "cli")


def test_the_root_holds_at_most_ten_modules():
    roots = sorted(p.name for p in METRICS.glob("*.py"))
    assert len(roots) <= 10, roots


@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_is_a_package_with_its_compute_api(family):
    package = METRICS / family
    assert (package / "__init__.py").exists()
    import importlib

    module = importlib.import_module(f"metrics.{family}")
    assert module.__all__ and all(callable(getattr(module, n)) or not n.islower() for n in module.__all__)


@pytest.mark.parametrize("family", FAMILIES)
def test_a_familys_compute_never_imports_persistence_or_a_cli(family):
    offenders = []
    for path in sorted((METRICS / family).glob("*.py")):
        if path.stem in PERSISTENCE or path.stem == "cli":
            continue
        offenders += [f"{path.relative_to(METRICS)}:{line} imports {name}" for line, name in _imports(path)
                      if _forbidden(name)]
    assert not offenders, offenders


def test_the_rule_itself_catches_a_forbidden_import(tmp_path):
    bad = tmp_path / "compute.py"
    bad.write_text("def f(db):\n    from metrics.audit.store import load_labels\n    return load_labels(db, 1)\n")
    assert [n for _, n in _imports(bad) if _forbidden(n)] == ["metrics.audit.store", "metrics.audit.store.load_labels"]
    assert not _forbidden("metrics.audit.labels") and not _forbidden("metrics.core.rollup")


def test_every_public_module_states_its_all():
    missing = []
    for path in sorted(METRICS.rglob("*.py")):
        if path.name == "__main__.py" or path.stem.startswith("_") and path.name != "__init__.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {t.id for n in tree.body if isinstance(n, (ast.Assign, ast.AnnAssign))
                 for t in (n.targets if isinstance(n, ast.Assign) else [n.target]) if isinstance(t, ast.Name)}
        if "__all__" not in names:
            missing.append(str(path.relative_to(METRICS)))
    assert not missing, missing


def test_no_streamlit_in_metrics():
    offenders = [f"{p.relative_to(METRICS)}:{line}" for p in METRICS.rglob("*.py") for line, name in _imports(p)
                 if name.split(".")[0] == "streamlit"]
    assert not offenders, offenders


def _page_paths(path: Path) -> list[tuple[int, str]]:
    """String constants of ``path`` that name a page file (``pages/...``), outside :data:`_HISTORY` tables."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    history = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id in _HISTORY for t in node.targets):
            history |= {id(n) for n in ast.walk(node.value)}
    return [(n.lineno, n.value) for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and "pages/" in n.value
            and n.value.lstrip().startswith("pages/") and id(n) not in history]


#: Tables that translate page paths stored by an older Chatlens (a migration step's input, not a page map).
_HISTORY = {"_OLD_PAGES"}


def test_metrics_never_names_a_page():
    """The KPI-to-page and view-to-page maps belong in ui/ (ui/kpi_pages.py): metrics/ knows families, not pages."""
    offenders = [f"{p.relative_to(METRICS)}:{line}: {text!r}" for p in METRICS.rglob("*.py")
                 for line, text in _page_paths(p)]
    assert not offenders, offenders


def test_the_page_rule_itself_catches_a_page_path(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text('PAGE = "pages/3_Outcomes.py"\n_OLD_PAGES = {"pages/4_Intents.py": "intents"}\n')
    assert _page_paths(bad) == [(1, "pages/3_Outcomes.py")]
