"""`make bench-typer`: evocli with typer 0.29 (which loads pydantic) against the pinned 0.28, side by side."""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from harness import REPO, Command, Pair, git_describe, install, memory_table, run_rows, time_table
from startup import ANSWER, call_env, expect

sys.path.insert(0, str(REPO))
from tests.server import FakeServer

VERSIONS = {"0.29": "typer>=0.29,<0.30", "0.28": "typer==0.28.0"}
# Does running a command load pydantic? (typer 0.29 imports it when a command runs.)
PROBE = (
    "import sys\n"
    "from evocli.cli import app\n"
    "try:\n"
    "    app(['ask', '--dry-run', 'hi'], prog_name='evocli')\n"
    "except SystemExit:\n"
    "    pass\n"
    "import typer\n"
    "sys.stderr.write(f\"\\n{typer.__version__} {'pydantic' in sys.modules}\\n\")\n"
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args(argv)

    venvs = {v: (REPO / "build" / f"bench-typer-{v}").resolve() for v in VERSIONS}
    for v, venv in venvs.items():
        print(f"bench: installing evocli with {VERSIONS[v]} into {venv} ...", file=sys.stderr)
        install(venv, VERSIONS[v], "requests>=2.31", "pyyaml>=6.0")
    py = {v: str(venv / "bin" / "python") for v, venv in venvs.items()}
    evocli = {v: str(venv / "bin" / "evocli") for v, venv in venvs.items()}
    probes = {}
    for v in VERSIONS:
        out = subprocess.run([py[v], "-c", PROBE], capture_output=True, text=True, check=True)
        probes[v] = out.stderr.splitlines()[-1].split()

    with tempfile.TemporaryDirectory() as tmp, FakeServer() as server:
        env = call_env(Path(tmp), server.base_url)
        tab = {"_EVOCLI_COMPLETE": "complete_bash", "COMP_WORDS": "evocli ask --", "COMP_CWORD": "2"}

        def both(label: str, argv: list[str], extra: dict[str, str], check: object) -> Pair:
            # argv[0] is "python" or "evocli", taken from each version's venv.
            def cmd(v: str) -> Command:
                exe = py[v] if argv[0] == "python" else evocli[v]
                return Command(f"{label}, typer {probes[v][0]}", [exe, *argv[1:]], extra, check)  # type: ignore[arg-type]

            return Pair(cmd("0.29"), cmd("0.28"))

        rows = [
            both('python -c "import typer"', ["python", "-c", "import typer"], {}, None),
            both("`evocli --help`", ["evocli", "--help"], {}, expect(b"Usage: evocli")),
            both("TAB, bash: `evocli ask --`", ["evocli"], tab, expect(b"--output\n")),
            both("`evocli ask --dry-run hi`", ["evocli", "ask", "--dry-run", "hi"], env, expect(b'"body"')),
            both("`evocli ask hi`", ["evocli", "ask", "hi"], env, expect(ANSWER, exact=True)),
        ]
        run_rows(rows, args.pairs, args.warmup)

    print(
        f"evocli ({git_describe()}); {args.pairs} pairs per row after {args.warmup} warm-up pairs, "
        "A and B alternately.\n"
    )
    for v in VERSIONS:
        print(f"- typer {probes[v][0]}: a command run loads pydantic: {probes[v][1]}")
    print("\n" + time_table(rows) + "\n")
    print(
        memory_table(
            [
                (f"`evocli ask hi`, typer {probes['0.29'][0]}", rows[-1].a_runs, None),
                (f"`evocli ask hi`, typer {probes['0.28'][0]}", rows[-1].b_runs, None),
            ]
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
