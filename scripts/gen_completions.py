"""Generate completions/ (bash, zsh, fish) from the Typer app; --check fails when a shipped file differs."""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT_DIR = REPO / "completions"

# Shell -> the file name each shell's completion loader looks for.
FILES = {"bash": "evocli.bash", "zsh": "_evocli", "fish": "evocli.fish"}


def prog_name() -> str:
    """The program name the app declares (what the user types)."""
    from evocli.cli import app

    name = app.info.name
    assert isinstance(name, str), "the Typer app must declare its name"
    return name


def render(shell: str) -> str:
    """The completion script for one shell, exactly as `evocli --show-completion` prints it.

    The scripts are thin: at each TAB the shell runs evocli with the completion variables set,
    so they stay right as commands and options are added; regenerate after a typer upgrade.
    """
    from typer._completion_shared import get_completion_script

    name = prog_name()
    complete_var = "_{}_COMPLETE".format(name.replace("-", "_").upper())
    return get_completion_script(prog_name=name, complete_var=complete_var, shell=shell) + "\n"


def generate() -> dict[Path, str]:
    """Every shipped file with its expected content."""
    return {OUT_DIR / file: render(shell) for shell, file in FILES.items()}


def stale(expected: dict[Path, str]) -> list[str]:
    """A unified diff per file that is missing or differs from a fresh generation."""
    diffs = []
    for path, text in expected.items():
        current = path.read_text() if path.exists() else ""
        if current != text:
            rel = path.relative_to(REPO)
            diffs.append(
                "".join(
                    difflib.unified_diff(
                        current.splitlines(keepends=True),
                        text.splitlines(keepends=True),
                        f"{rel} (shipped)",
                        f"{rel} (generated)",
                    )
                )
            )
    return diffs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="only compare, write nothing")
    args = parser.parse_args(argv)
    expected = generate()
    if args.check:
        diffs = stale(expected)
        for diff in diffs:
            sys.stderr.write(diff)
        if diffs:
            sys.stderr.write("completions/ is stale: run `make completions`\n")
        return 1 if diffs else 0
    OUT_DIR.mkdir(exist_ok=True)
    for path, text in expected.items():
        path.write_text(text)
        print(f"wrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
