"""The package's structure, measured from its imports (see docs/architecture.md).

Every ``import`` of an xstilts module in ``src/xstilts`` is an edge between two modules (files);
imports inside functions and under ``TYPE_CHECKING`` count too. The layers, top to bottom::

    cli (+ api) -> reporting -> pipelines (+ datafetch, demo) -> training -> tasks -> models
        -> metrics -> results -> bottom modules (settings, errors, fileio, packing, notices)

An import may go down or stay in its layer. At most ``MAX_UPWARD`` imports may go up, each with
a ``# upward import: <why>`` comment on its line or the line above. No import cycle between
modules, and no module over ``MAX_LINES`` lines.
"""

from __future__ import annotations

import ast
import graphlib
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from xstilts import settings as S
from xstilts.tasks.spec import TaskType

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "xstilts"
MAX_UPWARD = 2
MAX_LINES = 400
# Rank of each top-level module or package of xstilts (0 = top). A new one must be placed here
# (and in docs/architecture.md) before the structure tests pass.
LAYER_OF = {
    "xstilts": 0, "__main__": 0, "api": 0, "cli": 0,
    "reporting": 1,
    "pipelines": 2, "datafetch": 2, "demo": 2,
    "training": 3,
    "tasks": 4,
    "models": 5,
    "metrics": 6,
    "results": 7,
    "settings": 8, "errors": 8, "fileio": 8, "packing": 8, "notices": 8, "_version": 8,
}  # fmt: skip
_WHY = re.compile(r"#.*\bupward import:\s*\S")


@dataclass(frozen=True)
class Import:
    """One import statement's edge: ``source`` imports ``target`` at ``line`` of ``path``."""

    source: str
    target: str
    path: Path
    line: int


def modules(src: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under the package folder ``src``."""
    out = {}
    for path in src.rglob("*.py"):
        parts = path.relative_to(src.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _nearest(name: str, mods: dict[str, Path]) -> str | None:
    """``name`` or its closest enclosing package that is a module (``a.b.func`` -> ``a.b``)."""
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


def imports(src: Path) -> list[Import]:
    """Every import of one module of the package by another (self-imports left out)."""
    mods = modules(src)
    top = src.name
    edges = []
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: ``from ..x import y`` inside ``package``
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([node.module] if node.module else []))
                # ``from a.b import c``: the module a.b.c if it is one, else a.b itself.
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base
                           for a in node.names]  # fmt: skip
            for target in targets:
                if target.split(".")[0] != top:
                    continue
                resolved = _nearest(target, mods)
                if resolved is not None and resolved != name:
                    edges.append(Import(name, resolved, path, node.lineno))
    return edges


def layer(module: str, layers: dict[str, int]) -> int:
    """The layer rank of a module (KeyError: its top-level part has no layer yet)."""
    parts = module.split(".")
    return layers[parts[1] if len(parts) > 1 else parts[0]]


def upward(edges: list[Import], layers: dict[str, int]) -> list[Import]:
    """The imports that go from a lower layer to a higher one."""
    return [e for e in edges if layer(e.target, layers) < layer(e.source, layers)]


def has_reason(edge: Import) -> bool:
    """The import's line, or the line above it, says why it goes up."""
    lines = edge.path.read_text(encoding="utf-8").splitlines()
    return any(_WHY.search(lines[i]) for i in (edge.line - 1, edge.line - 2) if i >= 0)


def cycle(edges: list[Import]) -> list[str]:
    """One import cycle between modules (``[]`` when there is none)."""
    graph: dict[str, set[str]] = {}
    for e in edges:
        graph.setdefault(e.source, set()).add(e.target)
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        return list(exc.args[1])
    return []


# ------------------------------------------------------------------ the package itself


@pytest.fixture(scope="module")
def edges() -> list[Import]:
    return imports(SRC)


def test_every_top_level_module_has_a_layer() -> None:
    names = {p.stem for p in SRC.glob("*.py")} | {p.name for p in SRC.iterdir() if p.is_dir()}
    names -= {"__init__", "__pycache__"}
    assert names - set(LAYER_OF) == set(), "place it in LAYER_OF and docs/architecture.md"
    assert set(LAYER_OF) - names - {"xstilts"} == set(), "stale LAYER_OF entries"


def test_no_import_cycle_between_modules(edges: list[Import]) -> None:
    assert len(edges) > 300  # the measure sees the package's imports at all
    assert cycle(edges) == []


def test_at_most_two_upward_imports_each_saying_why(edges: list[Import]) -> None:
    up = upward(edges, LAYER_OF)
    shown = [f"{e.path.relative_to(ROOT)}:{e.line} {e.source} -> {e.target}" for e in up]
    assert len(up) <= MAX_UPWARD, shown
    assert [s for s, e in zip(shown, up, strict=True) if not has_reason(e)] == []


def test_the_bottom_modules_import_only_each_other(edges: list[Import]) -> None:
    bottom = {e for e in edges if layer(e.source, LAYER_OF) == LAYER_OF["settings"]}
    assert {e.target for e in bottom} <= {"xstilts.errors", "xstilts._version"}


def test_no_module_is_longer_than_400_lines() -> None:
    sizes = {p.relative_to(ROOT): len(p.read_text(encoding="utf-8").splitlines())
             for p in SRC.rglob("*.py")}  # fmt: skip
    assert max(sizes.values()) > 300  # the sizes were read
    assert {p: n for p, n in sizes.items() if n > MAX_LINES} == {}


def test_the_schemas_task_types_are_real_task_types() -> None:
    # settings.py sits below tasks/ and names types by their string value (``only=``).
    fields = [(schema, name) for schema in (S.TrainSettings, S.FeaturizeSettings)
              for name in S.keys(schema)]  # fmt: skip
    declared = {t for schema, name in fields for t in S.field_of(schema, name).metadata["only"]}
    assert declared and declared <= {t.value for t in TaskType}


def test_the_architecture_page_names_files_that_exist() -> None:
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`([\w/]+\.py)`", page))
    assert len(named) >= 15
    missing = {n for n in named if not (SRC / n).is_file() and not (ROOT / n).is_file()}
    assert missing == set()
    assert "docs/architecture.md" in (ROOT / "README.md").read_text(encoding="utf-8")


# ------------------------------------------------------------------ the measure itself


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    src = tmp_path / "pkg"
    for rel, text in files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(text)
    return src


def test_the_measure_finds_a_cycle_through_a_relative_and_a_function_import(
    tmp_path: Path,
) -> None:
    src = _package(tmp_path, {
        "__init__.py": "",
        "low/__init__.py": "",
        "low/a.py": "from .b import f\n",
        "low/b.py": "def f():\n    from pkg.low import c\n",
        "low/c.py": "import pkg.low.a\n",
        "low/d.py": "from pkg.low.c import nothing_here\n",
    })  # fmt: skip
    edges = imports(src)
    got = {(e.source, e.target) for e in edges}
    assert got == {("pkg.low.a", "pkg.low.b"), ("pkg.low.b", "pkg.low.c"),
                   ("pkg.low.c", "pkg.low.a"), ("pkg.low.d", "pkg.low.c")}  # fmt: skip
    assert set(cycle(edges)) == {"pkg.low.a", "pkg.low.b", "pkg.low.c"}
    assert cycle([e for e in edges if e.source != "pkg.low.c"]) == []


def test_the_measure_finds_upward_imports_and_their_reasons(tmp_path: Path) -> None:
    src = _package(tmp_path, {
        "__init__.py": "",
        "top/__init__.py": "",
        "top/t.py": "from pkg.low import x\n",
        "low/__init__.py": "",
        "low/x.py": "# upward import: the registry must see the plugin\nfrom pkg.top import t\n",
        "low/y.py": "import pkg.top.t  # a comment, but not why it goes up\n",
    })  # fmt: skip
    up = upward(imports(src), {"top": 0, "low": 1})
    assert sorted(e.source for e in up) == ["pkg.low.x", "pkg.low.y"]
    assert {e.source: has_reason(e) for e in up} == {"pkg.low.x": True, "pkg.low.y": False}
