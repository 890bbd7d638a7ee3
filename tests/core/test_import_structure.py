"""The package's import structure: no import cycle among the package's modules (neither at module level nor through
imports deferred into functions), and loading a policy imports nothing from training."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("sim2real", "policies", "randomizers", "robots")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imported(node: ast.stmt, package: str) -> set[str]:
    """What an import statement names (for ``from a import b``: ``a`` and ``a.b``, which may be a module)."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    if isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join(anchor + ([base] if base else []))
        return {base} | {f"{base}.{alias.name}" for alias in node.names}
    return set()


def _all_imports(tree: ast.Module, name: str, is_package: bool) -> set[str]:
    """Every import of the module, deferred ones inside functions included."""
    package = name if is_package else name.rpartition(".")[0]
    return set().union(*(_imported(node, package) for node in ast.walk(tree) if isinstance(node, ast.stmt)))


def _module_level_imports(tree: ast.Module, name: str, is_package: bool) -> set[str]:
    """Modules imported when the module is (statements at its top level, ``try``/``if`` blocks included, except
    ``if TYPE_CHECKING``); imports inside functions and classes run later and are left out."""
    found: set[str] = set()
    package = name if is_package else name.rpartition(".")[0]

    def visit(statements: list[ast.stmt]) -> None:
        for node in statements:
            found.update(_imported(node, package))
            if isinstance(node, ast.If) and not _type_checking(node.test):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)
                visit(node.finalbody)

    visit(tree.body)
    return found


def import_graph(deferred: bool = False) -> dict[str, set[str]]:
    """Module → the package modules it imports at module level (with ``deferred``: anywhere in it)."""
    files = {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        reader = _all_imports if deferred else _module_level_imports
        imported = reader(ast.parse(path.read_text(encoding="utf-8")), name, path.name == "__init__.py")
        targets = set()
        for module in imported:
            while module and module not in files:  # `from pkg import name`: the attribute is not a module
                module = module.rpartition(".")[0]
            if module and module != name:
                targets.add(module)
        graph[name] = targets
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` (its modules in order, the first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return stack[stack.index(target):] + [target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_cycle_finder_finds_a_planted_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_graph_sees_module_level_imports_and_not_deferred_ones():
    tree = ast.parse("import x.y\nfrom .z import w\nif TYPE_CHECKING:\n    import hidden\n"
                     "try:\n    import t\nexcept ImportError:\n    pass\ndef f():\n    import later\n")
    assert _module_level_imports(tree, "pkg.mod", False) == {"x.y", "pkg.z", "pkg.z.w", "t"}
    assert _all_imports(tree, "pkg.mod", False) == {"x.y", "pkg.z", "pkg.z.w", "t", "hidden", "later"}


@pytest.mark.parametrize("deferred", [False, True])
def test_no_import_cycle_among_the_package_modules(deferred):
    graph = import_graph(deferred)
    assert "sim2real.agents" in graph and "sim2real.policy_files" in graph
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_loading_a_policy_for_deployment_imports_nothing_from_training():
    code = ("import sys, sim2real.policy_files, sim2real.agents, sim2real.deploy.loop, sim2real.deploy.multirotor, "
            "sim2real.deploy.arm, sim2real.deployment, "
            "sim2real.evaluation.command, sim2real.commands.deploy, sim2real.commands.eval, sim2real.vision.pipeline; "
            "print(sorted(m for m in sys.modules if m in ('sim2real.train', 'policies.ppo', 'stable_baselines3')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


def _imports_of(prefix: str) -> dict[str, set[str]]:
    """Module → every package module it imports (deferred ones included), for the modules under ``prefix``."""
    return {name: targets for name, targets in import_graph(deferred=True).items()
            if name == prefix or name.startswith(prefix + ".")}


def test_deployment_imports_tasks_never_the_gym_envs():
    deploy = _imports_of("sim2real.deploy")
    assert "sim2real.deploy.multirotor" in deploy and "sim2real.tasks.quadrotor" in deploy["sim2real.deploy.multirotor"]
    offenders = {name: sorted(t for t in targets if t.startswith("sim2real.envs"))
                 for name, targets in deploy.items()}
    assert not any(offenders.values()), offenders


def test_tasks_are_pure_no_simulator_or_env_inside():
    tasks = _imports_of("sim2real.tasks")
    assert "sim2real.tasks.quadrotor" in tasks
    offenders = {name: sorted(t for t in targets if t.startswith(("sim2real.envs", "sim2real.sim")))
                 for name, targets in tasks.items()}
    assert not any(offenders.values()), offenders
    for path in (ROOT / "sim2real" / "tasks").rglob("*.py"):
        imported = _all_imports(ast.parse(path.read_text(encoding="utf-8")), _module_name(path), False)
        assert not any(m.split(".")[0] == "pybullet" for m in imported), path
