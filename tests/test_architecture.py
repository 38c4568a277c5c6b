"""The package's layout is its architecture: the teaching library at mtst/, the experiment machinery in mtst/lab/, which
the library never imports; no import cycles; modules short enough to read."""

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "mtst"


def module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """The mtst modules a file imports, at the top or inside functions; imports only a type checker sees are left out."""
    tree = ast.parse(path.read_text())
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rsplit(".", 1)[0]
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for n in ast.walk(node)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            if not base.startswith("mtst"):
                continue
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if (PKG.parent / (candidate.replace(".", "/") + ".py")).exists() else base)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("mtst")}
    return {m for m in found if m != here}


MODULES = {module_name(p): p for p in sorted(PKG.rglob("*.py"))}
GRAPH = {m: imports_of(p) & set(MODULES) for m, p in MODULES.items()}


def test_the_library_never_imports_the_lab():
    core = {m: deps for m, deps in GRAPH.items() if not m.startswith("mtst.lab")}
    leaks = {m: sorted(d for d in deps if d.startswith("mtst.lab")) for m, deps in core.items()}
    assert not {m: d for m, d in leaks.items() if d}


def test_there_are_no_import_cycles():
    def cycle_from(start):
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in GRAPH[node] - {"mtst", "mtst.lab"}:  # the packages' __init__ re-export; not a dependency
                if nxt == start:
                    return path + [nxt]
                if nxt not in path:
                    stack.append((nxt, path + [nxt]))
        return None

    cycles = [c for m in GRAPH if m not in ("mtst", "mtst.lab") and (c := cycle_from(m))]
    assert not cycles, cycles[0]


def test_the_graph_sees_imports_made_inside_functions():
    assert "mtst.training" in GRAPH["mtst.panels"]
    assert "mtst.lab.store" in GRAPH["mtst.lab.tables"]


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_stay_short_enough_to_read(name):
    assert len(MODULES[name].read_text().splitlines()) <= 420, f"{name}: split it (the style guide's ~400 lines)"


def _functions(tree):
    return [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def test_the_training_loop_fits_on_one_screen():
    tree = ast.parse((PKG / "training.py").read_text())
    (run,) = [f for c in tree.body if isinstance(c, ast.ClassDef) and c.name == "Trainer" for f in c.body
              if isinstance(f, ast.FunctionDef) and f.name == "run"]
    assert run.end_lineno - run.lineno + 1 <= 80, "Trainer.run is the loop a reader follows: move strategies out of it"
    called = {ast.unparse(n.func) for n in ast.walk(run) if isinstance(n, ast.Call)}
    for step in ("loss.backward", "self.optimizer.step", "self.scheduler.step", "self.evaluate", "joint_backward", "adopt_unfrozen"):
        assert step in called, f"the loop no longer calls {step}"


def _function_level_imports() -> list[tuple[str, int, str]]:
    found = []
    for name, path in MODULES.items():
        source = path.read_text()
        lines = source.splitlines()
        for fn in _functions(ast.parse(source)):
            for node in ast.walk(fn):
                relative = isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("mtst"))
                absolute = isinstance(node, ast.Import) and any(a.name.startswith("mtst") for a in node.names)
                if relative or absolute:
                    found.append((name, node.lineno, lines[node.lineno - 1]))
    return sorted(set(found))


def test_imports_from_inside_the_package_sit_at_the_top_unless_a_reason_is_stated():
    inside = _function_level_imports()
    assert len(inside) <= 15, f"{len(inside)} imports from mtst inside functions: move them to the top of their module"
    unexplained = [f"{m}:{line}" for m, line, text in inside if "#" not in text]
    assert not unexplained, f"an import inside a function needs its reason in a comment: {unexplained}"


def test_no_callback_knows_about_caching():
    for name, path in MODULES.items():
        for cls in (n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.ClassDef)):
            if "Callback" in {ast.unparse(b) for b in cls.bases} or cls.name == "Callback":
                methods = [f.name for f in cls.body if isinstance(f, ast.FunctionDef)]
                assert not [m for m in methods if "cache" in m], f"{name}.{cls.name}: the run cache keys callbacks by their arguments"
