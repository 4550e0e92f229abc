"""The package's layers import downward only, with no circles, and the lower layers stay light.

Layers, lowest first: ``errors``/``findings`` (the ground) → ``labels`` → ``data`` → ``plan``
→ ``scoring``, ``outputs`` → ``training`` → ``tuning``, ``report`` → ``testing`` (its
backend conformance suite runs searches) → ``cli``.
A module may import its own folder and any lower layer, never a sibling or a higher one.
Every import counts, at module level, inside a function or under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import labelwise

PACKAGE = Path(labelwise.__file__).parent
RANK = {"ground": 0, "labels": 1, "data": 2, "plan": 3, "scoring": 4,
        "outputs": 4, "training": 5, "tuning": 6, "report": 6, "testing": 7, "cli": 8}
LIGHT = ("labels", "data", "plan", "scoring", "outputs")
HEAVY = ("torch", "transformers", "optuna", "ray", "datasets", "accelerate")


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> list[tuple[str, int]]:
    """Every ``labelwise`` or third-party module ``name`` imports, with the line."""
    is_pkg = path.name == "__init__.py"
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")[: len(name.split(".")) - node.level + is_pkg]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            for alias in node.names:
                full = f"{mod}.{alias.name}"
                out.append((full if full in MODULES else mod, node.lineno))
    return out


def _layer(name: str) -> str | None:
    parts = name.split(".")
    if len(parts) < 2:
        return None
    return "ground" if parts[1] in ("errors", "findings") else parts[1]


def _edges() -> dict[str, set[str]]:
    return {name: {m for m, _ in _imports(name, path) if m in MODULES and m != "labelwise"}
            for name, path in MODULES.items()}


def test_every_module_sits_in_a_layer():
    loose = [n for n in MODULES if _layer(n) not in RANK and n not in
             ("labelwise", "labelwise.__main__")]
    assert loose == []


def test_imports_go_down_only():
    upward = []
    for name, path in MODULES.items():
        here = _layer(name)
        if here not in RANK:  # the facade and __main__ sit on top
            continue
        for mod, line in _imports(name, path):
            there = _layer(mod) if mod in MODULES else None
            if there is None or there == here or mod == "labelwise":
                continue
            if RANK[there] >= RANK[here]:
                upward.append(f"{path.relative_to(PACKAGE)}:{line} imports {mod}")
    assert upward == []


def test_no_import_circles():
    edges = _edges()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                circles.append(sorted(comp))

    for v in edges:
        if v not in index:
            visit(v)
    assert circles == []


@pytest.mark.parametrize("folder", LIGHT)
def test_light_folders_name_no_heavy_package(folder):
    named = [f"{MODULES[n].relative_to(PACKAGE)}:{line} imports {mod}"
             for n in MODULES if _layer(n) == folder
             for mod, line in _imports(n, MODULES[n]) if mod.split(".")[0] in HEAVY]
    assert named == []


@pytest.mark.parametrize("folder", LIGHT)
def test_light_folders_load_no_heavy_package(folder):
    names = [n for n in MODULES if _layer(n) == folder]
    code = (f"import sys\nfor n in {names!r}: __import__(n)\n"
            f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert proc.stdout.strip() == ""


def test_the_checks_see_an_upward_import(tmp_path, monkeypatch):
    # The rule itself: a labels module importing training is caught.
    bad = tmp_path / "bad.py"
    bad.write_text("from labelwise.training.train import train\n")
    found = [m for m, _ in _imports("labelwise.labels.bad", bad)]
    assert found == ["labelwise.training.train"]
    assert RANK[_layer(found[0])] >= RANK["labels"]
