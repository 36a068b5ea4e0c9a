"""`make bench-shortcuts`: what each start-up measure of evocli.entry buys, one added at a time."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from harness import REPO, Command, Pair, git_describe, install, run_rows, time_table
from startup import ANSWER, call_env, expect

sys.path.insert(0, str(REPO))
from tests.server import FakeServer

# The same app started three ways, each adding one measure to the one before.
PLAIN = "import sys\nsys.argv[0] = 'evocli'\nfrom evocli.cli import main\nmain()\n"
NO_TEARDOWN = (
    "import sys\nsys.argv[0] = 'evocli'\nfrom evocli.cli import main\nfrom evocli.entry import fast_exit\n"
    "try:\n    main()\nexcept SystemExit as exc:\n    fast_exit(exc.code)\n"
)
ENTRY = "import sys\nsys.argv[0] = 'evocli'\nfrom evocli.entry import main\nmain()\n"
STEPS = [
    ("cli.main (before)", PLAIN),
    ("+ no teardown", NO_TEARDOWN),
    ("+ GC threshold, --version shortcut (entry.main)", ENTRY),
]
# zsh and fish TAB with typer's own help-text sanitizer put back (it loads rich for each TAB).
RICH_SANITIZER = (
    "import sys\nsys.argv[0] = 'evocli'\nfrom typer import _completion_classes as c\n"
    "typer_own = c._sanitize_help_text\nimport evocli.cli\nc._sanitize_help_text = typer_own\n"
    "from evocli.entry import main\nmain()\n"
)
ZSH_TAB = {"_EVOCLI_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": "evocli ask --"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--venv", type=Path, default=REPO / "build" / "bench-venv")
    parser.add_argument("--no-install", action="store_true")
    args = parser.parse_args(argv)
    venv = args.venv.resolve()
    if not args.no_install:
        install(venv)
    py = str(venv / "bin" / "python")

    with tempfile.TemporaryDirectory() as tmp, FakeServer() as server:
        env = call_env(Path(tmp), server.base_url)
        cases = [
            ("`evocli ask hi`", ["ask", "hi"], env, expect(ANSWER, exact=True)),
            ("`evocli --help`", ["--help"], {}, expect(b"Usage: evocli")),
            ("`evocli --version`", ["--version"], {}, expect(b"evocli ")),
        ]
        rows = []
        for label, args_, extra, check in cases:
            cmds = [
                Command(f"{label}: {step}", [py, "-c", code, *args_], extra, check) for step, code in STEPS
            ]
            rows += [Pair(cmds[1], cmds[0]), Pair(cmds[2], cmds[1])]
        rows.append(
            Pair(
                Command(
                    "TAB, zsh: help texts as written", [py, "-c", ENTRY], ZSH_TAB, expect(b'"--output":')
                ),
                Command("TAB, zsh: typer's rich sanitizer", [py, "-c", RICH_SANITIZER], ZSH_TAB),
            )
        )
        run_rows(rows, args.pairs, args.warmup)
    print(f"evocli ({git_describe()}); {args.pairs} pairs per row after {args.warmup} warm-up pairs.\n")
    print(time_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
