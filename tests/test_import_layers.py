"""The source packages import each other in layers: no circles anywhere, and the store never imports the bridge.

Read from the source with ``ast`` (nothing is imported), counting every import: at the top, inside functions
(a lazy import that hides a circle is still a circle) and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bridge", "callin", "store", "panel", "phonebank")
# Who may not import whom (importer package -> forbidden package).
FORBIDDEN = {("store", "bridge"), ("store", "panel"), ("bridge", "panel"), ("callin", "panel")}


def modules() -> dict[str, Path]:
    found = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules ``name`` imports (a package's own module when ``from pkg import mod`` names one)."""
    out = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                out.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return {m for m in out if m in known and m != name}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(name, path, known) for name, path in known.items()}


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(g[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return found


def test_the_walker_sees_the_imports_it_must() -> None:
    g = graph()
    assert "bridge.ari_app" in g["panel.keys"]  # from bridge.ari_app import Controller
    assert "panel.admin" in g["panel.app"]  # from panel import admin
    assert "bridge.dialer" in g["bridge.ari_app"]  # from bridge import dialer as d
    assert {"panel.keys", "panel.common"} <= g["panel.api"]


def test_the_walker_finds_a_circle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circles() -> None:
    assert cycles(graph()) == []


@pytest.mark.parametrize(("importer", "forbidden"), sorted(FORBIDDEN))
def test_lower_layers_do_not_import_higher_ones(importer: str, forbidden: str) -> None:
    wrong = sorted(
        f"{m} -> {i}"
        for m, deps in graph().items()
        if m.split(".")[0] == importer
        for i in deps
        if i.split(".")[0] == forbidden
    )
    assert wrong == []


def test_panel_screens_import_only_the_leaves() -> None:
    """Screens share code through keys/common/views, never by importing one another (the old circle)."""
    leaves = {
        "panel.keys",
        "panel.common",
        "panel.views",
        "panel.localtime",
        "panel.proxy",
        "panel.throttle",
        "panel.web",
        "panel.webphone",
        "panel.i18n",
        "panel.list_worker",
    }  # webphone: also the computer-audio helpers the caller pages use; i18n: the language of a request;
    # list_worker: the list import's process (admin's List step)
    g = graph()
    screens = {
        "panel.admin",
        "panel.api",
        "panel.bans",
        "panel.caller",
        "panel.feedback",
        "panel.forecast",
        "panel.login",
        "panel.ops",
        "panel.results",
    }
    for screen in screens:
        assert {m for m in g[screen] if m.startswith("panel.")} <= leaves, screen
    assert {m for m in g["panel.push"] if m.startswith("panel.")} <= leaves | {"panel.results"}
    for leaf in ("panel.keys", "panel.common", "panel.views"):
        assert not {m for m in g[leaf] if m.startswith("panel.")} - {
            "panel.keys",
            "panel.throttle",
            "panel.localtime",
            "panel.i18n",
        }, leaf
