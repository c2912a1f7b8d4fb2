"""The tree is the pipeline: imports flow one way between segcore's stage folders, no module
imports itself back through a cycle, and no two files share a name."""

from __future__ import annotations

import ast
from pathlib import Path

from segcore.paths import REPO_ROOT

#: segcore's folders in pipeline order: a folder imports only from folders before it (and from
#: the small shared modules at segcore's root). The per-image pieces of `segcore.inference`
#: (pre/post-processing, instance targets) come first because training uses them too.
STAGES = (
    "segcore.inference",
    "segcore.io",
    "segcore.scoring",
    "segcore.data",
    "segcore.models",
    "segcore.training",
    "export",
    "segcore.large",
    ("segcore.commands", "segcore.app", "segcore.napari"),
)
#: the old paths of the three public commands: ``python -m segcore.train|predict|evaluate``
SHIMS = tuple(f"segcore.{command}" for command in ("train", "predict", "evaluate"))


def modules() -> dict[str, Path]:
    """Every module of segcore and export by dotted name."""
    found = {}
    for top in ("segcore", "export"):
        for path in (REPO_ROOT / top).rglob("*.py"):
            name = ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The known modules a file imports, at any depth of the file (lazy imports included)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in out if name in known}


def rank(module: str) -> int | None:
    """The stage a module belongs to (None for segcore's root modules)."""
    for i, stage in enumerate(STAGES):
        for folder in (stage,) if isinstance(stage, str) else stage:
            if module == folder or module.startswith(folder + "."):
                return i
    return None


def graph() -> dict[str, set[str]]:
    """Module -> the modules it imports."""
    known = modules()
    return {name: imports(path, known) - {name} for name, path in known.items()}


def test_imports_flow_one_way_between_stages():
    upward = [
        f"{a} imports {b}"
        for a, targets in graph().items()
        for b in targets
        if rank(a) is not None and rank(b) is not None and rank(b) > rank(a)
    ]
    assert not upward, upward


def test_only_the_shims_and_commands_import_the_commands():
    callers = [
        f"{a} imports {b}"
        for a, targets in graph().items()
        for b in targets
        if b.startswith("segcore.commands") and not a.startswith("segcore.commands")
        if a not in SHIMS
    ]
    assert not callers, callers


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of the graph, or None."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return path[path.index(node) :] + [node]
        if node in done:
            return None
        for nxt in sorted(edges.get(node, ())):
            cycle = visit(nxt, path + [node])
            if cycle:
                return cycle
        done.add(node)
        return None

    for start in sorted(edges):
        cycle = visit(start, [])
        if cycle:
            return cycle
    return None


def test_no_import_cycle():
    cycle = find_cycle(graph())
    assert cycle is None, " -> ".join(cycle)


def test_the_checks_can_fail():
    """A made-up cycle is found, and a large-image module ranks after the engine."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert rank("segcore.large.blockplan") > rank("segcore.inference.engine")
    assert rank("segcore.card") is None


def test_file_names_are_unique():
    seen: dict[str, str] = {}
    duplicates = []
    for name, path in modules().items():
        if path.name in ("__init__.py", "__main__.py") or name in SHIMS:
            continue
        if path.name in seen:
            duplicates.append(f"{seen[path.name]} and {name}")
        seen[path.name] = name
    assert not duplicates, duplicates


def test_shims_only_call_their_command():
    for shim in SHIMS:
        text = (REPO_ROOT / (shim.replace(".", "/") + ".py")).read_text()
        target = shim.replace("segcore.", "segcore.commands.")
        assert f"from {target} import main" in text and len(text.splitlines()) <= 10
