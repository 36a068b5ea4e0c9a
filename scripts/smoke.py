"""`make smoke`: build the sdist and wheel, install the wheel in a fresh venv, run evocli from there."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / "build" / "smoke"


def source_version() -> str:
    """The version, read from the one place it is written."""
    text = (REPO / "evocli" / "__init__.py").read_text()
    found = re.search(r'^__version__ = "([^"]+)"$', text, flags=re.MULTILINE)
    if not found:
        raise SystemExit("smoke: no __version__ in evocli/__init__.py")
    return found.group(1)


def run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    print("+ " + " ".join(argv), flush=True)
    return subprocess.run(argv, text=True, check=True, **kwargs)  # type: ignore[call-overload, no-any-return]


def fail(message: str) -> None:
    raise SystemExit(f"smoke: FAILED: {message}")


def check_artifacts(dist: Path, version: str) -> Path:
    """One wheel and one sdist, both named and labelled with the source version; returns the wheel."""
    wheels, sdists = list(dist.glob("*.whl")), list(dist.glob("*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        fail(f"expected one wheel and one sdist in {dist}, found {[p.name for p in dist.iterdir()]}")
    wheel, sdist = wheels[0], sdists[0]
    if not wheel.name.startswith(f"evocli-{version}-") or sdist.name != f"evocli-{version}.tar.gz":
        fail(f"artifact names do not carry version {version}: {wheel.name}, {sdist.name}")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        info = f"evocli-{version}.dist-info"
        metadata = zf.read(f"{info}/METADATA").decode()
        entry_points = zf.read(f"{info}/entry_points.txt").decode()
    if f"\nVersion: {version}\n" not in metadata:
        fail(f"wheel METADATA does not say Version: {version}")
    if "evocli = evocli.entry:main" not in entry_points:
        fail(f"wheel entry points: {entry_points!r}")
    stray = [n for n in names if not n.startswith(("evocli/", info))]
    if stray:
        fail(f"wheel holds files outside the package: {stray}")
    with tarfile.open(sdist) as tf:
        members = {m.name.split("/", 1)[1] for m in tf.getmembers() if "/" in m.name}
    for needed in (
        "pyproject.toml",
        "README.md",
        "evocli/__init__.py",
        "evocli/entry.py",
        "completions/evocli.bash",
        "completions/_evocli",
        "completions/evocli.fish",
    ):
        if needed not in members:
            fail(f"sdist lacks {needed}")
    print(f"smoke: {wheel.name} and {sdist.name} carry version {version}")
    return wheel


def main() -> int:
    version = source_version()
    shutil.rmtree(WORK, ignore_errors=True)
    dist, venv = WORK / "dist", WORK / "venv"
    # python -m build makes the sdist, then the wheel from that sdist: a file missing from the
    # sdist breaks the wheel here rather than for a packager.
    run([sys.executable, "-m", "build", "--outdir", str(dist), str(REPO)], stdout=subprocess.DEVNULL)
    wheel = check_artifacts(dist, version)
    run([sys.executable, "-m", "venv", str(venv)])
    run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            str(wheel),
        ]
    )
    evocli = str(venv / "bin" / "evocli")

    with tempfile.TemporaryDirectory() as home:
        # A user with no key, no config and no evocli variables, outside the checkout.
        env = {"PATH": "/usr/bin:/bin", "HOME": home, "XDG_CONFIG_HOME": f"{home}/config"}
        out = run([evocli, "--version"], capture_output=True, env=env, cwd=home).stdout
        if out != f"evocli {version}\n":
            fail(f"evocli --version printed {out!r}")
        out = run([evocli, "ask", "--dry-run", "hi"], capture_output=True, env=env, cwd=home).stdout
        doc = json.loads(out)
        if doc["body"]["messages"] != [{"role": "user", "content": "hi"}] or doc["method"] != "POST":
            fail(f"evocli ask --dry-run hi printed {out!r}")
        probe = "import importlib.metadata as m; print(m.version('evocli'))"
        out = run([str(venv / "bin" / "python"), "-c", probe], capture_output=True, env=env, cwd=home).stdout
        if out.strip() != version:
            fail(f"installed metadata says {out.strip()}, the source says {version}")
        tab = {"_EVOCLI_COMPLETE": "complete_bash", "COMP_WORDS": "evocli ask --dry", "COMP_CWORD": "2"}
        out = run([evocli], capture_output=True, env={**env, **tab}, cwd=home).stdout
        if out.split() != ["--dry-run"]:
            fail(f"TAB completion answered {out!r}")
    print(f"smoke: OK: evocli {version} builds, installs and runs from {venv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
