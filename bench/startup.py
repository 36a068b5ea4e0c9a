"""`make bench`: start-up, per-call cost and peak memory of evocli against its baselines, as Markdown."""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from harness import REPO, Command, Pair, git_describe, install, memory_table, run_rows, time_table

sys.path.insert(0, str(REPO))
from tests.server import DEFAULT_CONTENT, FakeServer

KEY = "sk-bench-00000000000000000000"
ANSWER = (DEFAULT_CONTENT + "\n").encode()
BODY = '{"model":"gpt-5.2","messages":[{"role":"user","content":"hi"}]}'
TARGET_ASK = 1.35  # evocli ask over the python + requests script
TARGET_VERSION = 1.15  # evocli --version over python -c "import typer"
TARGET_RSS_MIB = 35.0  # peak memory of evocli ask


def expect(want: bytes, *, exact: bool = False) -> Callable[[int, bytes], str | None]:
    """A check that the run exited 0 and printed `want` (or something containing it)."""

    def check(code: int, out: bytes) -> str | None:
        if code != 0:
            return f"exit {code}"
        if (out != want) if exact else (want not in out):
            return f"expected {'exactly ' if exact else ''}{want!r}"
        return None

    return check


def options() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=30, help="measured A/B pairs per row (default 30)")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured pairs first (default 3)")
    parser.add_argument(
        "--venv",
        type=Path,
        default=REPO / "build" / "bench-venv",
        help="where evocli is installed for measuring (default build/bench-venv)",
    )
    parser.add_argument("--no-install", action="store_true", help="measure the venv as it is")
    return parser


def call_env(home: Path, base_url: str) -> dict[str, str]:
    """A user with a key in the environment, no config file, and the ledger on (the default)."""
    return {
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_STATE_HOME": str(home / "state"),
        "EVOCLI_CONFIG": str(home / "config" / "evocli" / "config.yaml"),
        "EVOCLI_LEDGER_DIR": str(home / "ledger"),
        "EVOLINK_API_KEY": KEY,
        "EVOLINK_BASE_URL": base_url,
        "NO_PROXY": "127.0.0.1",
    }


def main(argv: list[str] | None = None) -> int:
    args = options().parse_args(argv)
    venv = args.venv.resolve()
    if not args.no_install:
        print(f"bench: installing evocli into {venv} ...", file=sys.stderr)
        install(venv)
    py, evocli = str(venv / "bin" / "python"), str(venv / "bin" / "evocli")
    version = subprocess.run([evocli, "--version"], capture_output=True, check=True).stdout
    curl = shutil.which("curl")

    with tempfile.TemporaryDirectory() as tmp, FakeServer() as server:
        env = call_env(Path(tmp), server.base_url)
        import_typer = Command('python -c "import typer"', [py, "-c", "import typer"])
        bash_tab = {"_EVOCLI_COMPLETE": "complete_bash", "COMP_WORDS": "evocli ask --", "COMP_CWORD": "2"}
        zsh_tab = {"_EVOCLI_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": "evocli ask --"}
        start = [
            Pair(
                Command("`evocli --version`", [evocli, "--version"], {}, expect(version, exact=True)),
                import_typer,
                TARGET_VERSION,
            ),
            Pair(Command("`evocli --help`", [evocli, "--help"], {}, expect(b"Usage: evocli")), import_typer),
            Pair(
                Command("`evocli ask --help`", [evocli, "ask", "--help"], {}, expect(b"--dry-run")),
                import_typer,
            ),
            Pair(
                Command("TAB, bash: `evocli ask --`", [evocli], bash_tab, expect(b"--output\n")), import_typer
            ),
            Pair(
                Command("TAB, zsh: `evocli ask --`", [evocli], zsh_tab, expect(b'"--output":')), import_typer
            ),
        ]
        ask = Command("`evocli ask hi`", [evocli, "ask", "hi"], env, expect(ANSWER, exact=True))
        script = [py, str(REPO / "bench" / "baseline_request.py"), server.base_url, "hi"]
        calls = [
            Pair(
                ask, Command("python + requests script", script, env, expect(ANSWER, exact=True)), TARGET_ASK
            )
        ]
        if curl:
            curl_argv = [
                curl,
                "-sS",
                "--fail",
                "-H",
                f"Authorization: Bearer {KEY}",
                "-H",
                "Content-Type: application/json",
                "-d",
                BODY,
                f"{server.base_url}/chat/completions",
            ]
            calls.append(Pair(ask, Command("curl", curl_argv, env, expect(b'"chat.completion"'))))
        run_rows(start + calls, args.pairs, args.warmup)

    typer_version = subprocess.run(
        [py, "-c", "import typer; print(typer.__version__)"], capture_output=True, text=True, check=True
    ).stdout.strip()
    print(
        f"evocli {version.decode().split()[-1]} ({git_describe()}), Python {platform.python_version()}, "
        f"typer {typer_version}, {platform.machine()}, {len(os.sched_getaffinity(0))} CPUs; "
        f"{args.pairs} pairs per row after {args.warmup} warm-up pairs, A and B alternately.\n"
    )
    print("Start-up\n\n" + time_table(start) + "\n")
    print("A non-streamed call to the local test server\n\n" + time_table(calls) + "\n")
    ask_runs = [s for row in calls for s in row.a_runs]
    print(
        "Peak memory (ru_maxrss of the measured runs)\n\n"
        + memory_table(
            [
                ("`evocli ask hi`", ask_runs, TARGET_RSS_MIB),
                ("python + requests script", calls[0].b_runs, None),
                ("`evocli --version`", start[0].a_runs, None),
                ("`evocli --help`", start[1].a_runs, None),
                ('python -c "import typer"', [s for row in start for s in row.b_runs], None),
            ]
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
