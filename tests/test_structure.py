"""The shape of the code: no import cycles, torch stays optional, no module reaches into another's private state."""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "partitionnet"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _top_level_imports(path: Path, modules: set) -> set:
    """The partitionnet modules ``path`` imports when it is imported (imports inside functions are lazy)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        for n in (node.body + node.orelse if isinstance(node, ast.Try) else [node]):
            if isinstance(n, ast.ImportFrom):
                if n.level:
                    base = package.split(".")[:len(package.split(".")) - (n.level - 1)]
                    target = ".".join(base + ([n.module] if n.module else []))
                else:
                    target = n.module or ""
                submodules = {f"{target}.{a.name}" for a in n.names} & modules
                found.update(submodules)
                if len(submodules) < len(n.names):      # some names come from the module ``target`` itself
                    found.add(target)
            elif isinstance(n, ast.Import):
                found.update(a.name for a in n.names)
    return {m for m in found if m in modules and m != name}


def find_cycles(graph: dict) -> list:
    """Every cycle met by a depth-first walk of ``graph`` (module -> modules it imports)."""
    state, cycles = {}, []

    def walk(u, stack):
        state[u] = "open"
        stack.append(u)
        for v in sorted(graph[u]):
            if state.get(v) == "open":
                cycles.append(stack[stack.index(v):] + [v])
            elif v not in state:
                walk(v, stack)
        stack.pop()
        state[u] = "done"

    for u in sorted(graph):
        if u not in state:
            walk(u, [])
    return cycles


def import_graph() -> dict:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {_module_name(p) for p in paths}
    return {_module_name(p): _top_level_imports(p, modules) for p in paths}


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_between_modules():
    graph = import_graph()
    assert "partitionnet.model" in graph and graph["partitionnet.network"], "the graph was not read"
    cycles = find_cycles(graph)
    assert not cycles, "module-level import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_importing_partitionnet_does_not_import_torch():
    code = "import sys, partitionnet; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False", "torch must stay optional and lazy: `import partitionnet` imported it"


def test_from_torch_is_reachable_from_the_package():
    pytest.importorskip("torch")
    import partitionnet
    from partitionnet.torch_bridge import from_torch

    assert partitionnet.from_torch is from_torch and "from_torch" in dir(partitionnet)
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        partitionnet.not_a_name  # noqa: B018


PRIVATE = re.compile(r"\b(?!self\b|cls\b)[A-Za-z_][A-Za-z0-9_]*\.(_params|_cache|_trace|_keys|_vt_cache)\b")


@pytest.mark.parametrize("folder", ["partitionnet", "derivations", "tests", "notebooks"])
def test_no_module_reaches_into_another_objects_private_state(folder):
    offenders = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        if path.name == Path(__file__).name:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if PRIVATE.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "private state reached from outside its object:\n" + "\n".join(offenders)


def test_the_private_state_pattern_matches_what_it_should():
    assert PRIVATE.search("x = net._params['conv1.W']")
    assert not PRIVATE.search("x = self._params['conv1.W']")
