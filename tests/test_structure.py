"""The shape of the code: the handler covers every command, the command table is complete, no library
is patched, and every module imports on its own."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evocli.cli import COMMANDS, build_app
from evocli.errors import InputError
from tests.conftest import REPO, child_env

PACKAGE = REPO / "evocli"
README = (REPO / "README.md").read_text()


def test_the_handler_covers_a_command_that_did_not_opt_in() -> None:
    app = build_app()

    @app.command("throwaway")
    def throwaway(kind: str) -> None:
        if kind == "expected":
            raise InputError("the throwaway input is bad", hint="give it a good one")
        raise RuntimeError("a planted bug")

    runner = CliRunner()
    r = runner.invoke(app, ["throwaway", "expected"], catch_exceptions=False)
    assert (r.exit_code, r.stdout, r.stderr) == (
        65, "", "evocli: error: the throwaway input is bad\nhint: give it a good one\n"
    )
    r = runner.invoke(app, ["throwaway", "bug"], catch_exceptions=False)
    assert (r.exit_code, r.stdout, r.stderr) == (
        1, "", "evocli: error: internal error: RuntimeError: a planted bug\n"
               "hint: run again with --debug for details\n"
    )
    r = runner.invoke(app, ["throwaway"], catch_exceptions=False)
    assert (r.exit_code, r.stderr) == (
        2, "evocli: error: missing argument 'kind'\nhint: 'evocli throwaway -h' lists the options\n"
    )


def _library_names(tree: ast.Module) -> set[str]:
    """Names a module binds by importing from outside evocli."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names if not a.name.startswith("evocli")}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and not (node.module or "").startswith("evocli"):
            names |= {a.asname or a.name for a in node.names}
    return names


def _root(node: ast.expr) -> str | None:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def test_no_module_assigns_to_an_attribute_of_a_library() -> None:
    """Subclass or register through public API; never patch a library (it holds only by a pin)."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text())
        libraries = _library_names(tree)
        for node in ast.walk(tree):
            targets: list[ast.expr] = []
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, ast.AugAssign | ast.AnnAssign):
                targets = [node.target]
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "setattr":
                targets = [ast.Attribute(value=node.args[0], attr="?")] if node.args else []
            for target in targets:
                if isinstance(target, ast.Attribute) and _root(target) in libraries:
                    found.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert found == []


def test_the_assignment_check_sees_a_patch(tmp_path: Path) -> None:
    tree = ast.parse("import typer\nfrom typer import _click\n_click.UsageError.show = print\n")
    libraries = _library_names(tree)
    assign = next(n for n in ast.walk(tree) if isinstance(n, ast.Assign))
    assert _root(assign.targets[0]) in libraries


def test_every_module_imports_on_its_own() -> None:
    """A fresh import of each module, first of its package, so an import cycle cannot hide."""
    modules = sorted(
        ".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        for p in PACKAGE.rglob("*.py")
        if p.name != "__main__.py"
    )
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    for loaded in [m for m in sys.modules if m == 'evocli' or m.startswith('evocli.')]:\n"
        "        del sys.modules[loaded]\n"
        "    importlib.import_module(name)\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         env=child_env(), timeout=120)
    assert (out.returncode, out.stdout, out.stderr) == (0, "ok\n", "")


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_in_the_table_has_help_a_readme_section_and_completion(name: str) -> None:
    import typer.main

    group = typer.main.get_command(build_app([name]))
    command = group.commands[name]  # type: ignore[attr-defined]
    example = command.help.split("Example: ", 1)[1]
    assert f"evocli {name} " in example
    assert f"\n## `evocli {name}" in README
    env = child_env({"_EVOCLI_COMPLETE": "complete_bash", "COMP_WORDS": "evocli ", "COMP_CWORD": "1"})
    out = subprocess.run([sys.executable, "-m", "evocli"], capture_output=True, text=True, cwd=REPO, env=env,
                         timeout=60)
    assert name in out.stdout.split()


def test_commands_appear_in_the_tables_order() -> None:
    out = subprocess.run([sys.executable, "-m", "evocli", "--help"], capture_output=True, text=True, cwd=REPO,
                         env=child_env(), timeout=60)
    listed = [line.split()[0] for line in out.stdout.split("Commands:\n")[1].splitlines() if line.strip()]
    assert listed == list(COMMANDS)


def test_no_module_is_over_450_lines() -> None:
    sizes = {str(p.relative_to(REPO)): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    assert {name: n for name, n in sizes.items() if n > 450} == {}
