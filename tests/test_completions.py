"""Shell completion: the shipped scripts equal a fresh generation, and TAB gives the right candidates."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import REPO, child_env

COMPLETIONS = REPO / "completions"
# The console script installed next to this interpreter (make install puts it there).
BIN_DIR = Path(sys.executable).parent
EVOCLI = BIN_DIR / "evocli"
OUTPUT_MODES = ["text", "json", "jsonl", "usage"]


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_completions", REPO / "scripts" / "gen_completions.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shipped_completions_equal_a_fresh_generation() -> None:
    gen = load_generator()
    expected = gen.generate()
    assert sorted(p.name for p in expected) == ["_evocli", "evocli.bash", "evocli.fish"]
    diffs = gen.stale(expected)
    assert not diffs, "completions/ is stale, run `make completions`:\n" + "\n".join(diffs)


def test_check_mode_reports_a_stale_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gen = load_generator()
    monkeypatch.setattr(gen, "OUT_DIR", tmp_path)
    monkeypatch.setattr(gen, "REPO", tmp_path)
    assert gen.main([]) == 0
    assert gen.main(["--check"]) == 0
    (tmp_path / "_evocli").write_text("#compdef evocli\n# edited by hand\n")
    assert gen.main(["--check"]) == 1


def test_the_console_script_is_installed() -> None:
    assert EVOCLI.exists(), f"{EVOCLI} is missing: run make install"


def complete(env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """One completion request to the installed evocli, as a shell's completion function sends it."""
    return subprocess.run(
        [str(EVOCLI)],
        capture_output=True,
        text=True,
        env=child_env(env),
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def bash_candidates(line: str) -> list[str]:
    words = line.split(" ")
    r = complete({"_EVOCLI_COMPLETE": "complete_bash", "COMP_WORDS": line, "COMP_CWORD": str(len(words) - 1)})
    assert (r.returncode, r.stderr) == (0, "")
    return r.stdout.splitlines()


def test_bash_protocol_commands_options_and_choices() -> None:
    assert "ask" in bash_candidates("evocli ")
    assert bash_candidates("evocli ask --ou") == ["--output"]
    assert bash_candidates("evocli ask --output ") == OUTPUT_MODES
    assert bash_candidates("evocli ask -o js") == ["json", "jsonl"]
    assert {"--model", "--no-stdin", "--dry-run", "--help"} <= set(bash_candidates("evocli ask --"))


def test_zsh_protocol_gives_whole_help_texts() -> None:
    r = complete({"_EVOCLI_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": "evocli ask --st"})
    assert r.returncode == 0
    assert r.stdout == (
        '_arguments \'*: :(("--stream":"Stream the answer as it arrives '
        "[default\\\\: when stdout is a terminal and -o text].\"))'\n"
    )


def test_fish_protocol_one_candidate_per_line() -> None:
    env = {"_EVOCLI_COMPLETE": "complete_fish", "_TYPER_COMPLETE_FISH_ACTION": "get-args"}
    r = complete({**env, "_TYPER_COMPLETE_ARGS": "evocli ask --out"})
    assert r.stdout == (
        "--output\ttext: the answer; json: the response body; jsonl: streamed JSON lines; "
        "usage: the usage object.\n"
    )
    r = complete({**env, "_TYPER_COMPLETE_ARGS": "evocli ask --output "})
    assert r.stdout.splitlines() == OUTPUT_MODES


def shell_env() -> dict[str, str]:
    """The installed evocli first on PATH, as after `pipx install`."""
    return child_env({"PATH": f"{BIN_DIR}{os.pathsep}{os.environ.get('PATH', '')}"})


def test_bash_script_fills_compreply() -> None:
    script = (
        f"source {COMPLETIONS / 'evocli.bash'}\n"
        "complete -p evocli\n"
        "COMP_WORDS=(evocli ask --output ''); COMP_CWORD=3\n"
        "_evocli_completion evocli\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
        "COMP_WORDS=(evocli ask --dry); COMP_CWORD=2\n"
        "_evocli_completion evocli\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    r = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", script],
        capture_output=True,
        text=True,
        env=shell_env(),
        timeout=60,
    )
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout.splitlines() == [
        "complete -o default -F _evocli_completion evocli",
        *OUTPUT_MODES,
        "--dry-run",
    ]


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_zsh_script_hands_candidates_to_arguments() -> None:
    # Outside an interactive shell, stand-ins for compdef and _arguments print what they are given.
    script = (
        'compdef() { print -r -- "compdef $*"; }\n'
        '_arguments() { print -r -- "$@"; }\n'
        f"source {COMPLETIONS / '_evocli'}\n"
        "words=(evocli ask -o j); CURRENT=4\n"
        "_evocli_completion\n"
    )
    r = subprocess.run(
        ["zsh", "-f", "-c", script], capture_output=True, text=True, env=shell_env(), timeout=60
    )
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout.splitlines() == ["compdef _evocli_completion evocli", '*: :(("json" "jsonl"))']


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed")
def test_fish_script_completes_options_and_choices() -> None:
    script = (
        f"source {COMPLETIONS / 'evocli.fish'}\n"
        "complete -C 'evocli ask --outp'\n"
        "complete -C 'evocli ask --output j'\n"
    )
    r = subprocess.run(
        ["fish", "--no-config", "-c", script], capture_output=True, text=True, env=shell_env(), timeout=60
    )
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout.splitlines() == [
        "--output\ttext: the answer; json: the response body; jsonl: streamed JSON lines; usage: the usage object.",
        "json",
        "jsonl",
    ]
