"""`make bench-validators`: import, compile and validation time of three JSON Schema validators."""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness import REPO, clean_env, git_describe, quartiles

sys.path.insert(0, str(REPO))
from evocli.schema import strictify

# Each library: its module, and how its docs say to check a document and collect the errors.
LIBRARIES = {"jsonschema": "jsonschema", "fastjsonschema": "fastjsonschema", "jsonschema-rs": "jsonschema_rs"}
Check = Callable[[Any], list[str]]


def build_jsonschema(schema: dict[str, Any]) -> Check:
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    return lambda doc: [e.message for e in validator.iter_errors(doc)]


def build_fastjsonschema(schema: dict[str, Any]) -> Check:
    import fastjsonschema

    validate = fastjsonschema.compile(schema)

    # It stops at the first error: it cannot list them all.
    def check(doc: Any) -> list[str]:
        try:
            validate(doc)
        except fastjsonschema.JsonSchemaValueException as exc:
            return [exc.message]
        return []

    return check


def build_jsonschema_rs(schema: dict[str, Any]) -> Check:
    import jsonschema_rs

    validator = jsonschema_rs.Draft202012Validator(schema, offline=True)
    return lambda doc: [e.message for e in validator.iter_errors(doc)]


BUILDERS: dict[str, Callable[[dict[str, Any]], Check]] = {
    "jsonschema": build_jsonschema,
    "fastjsonschema": build_fastjsonschema,
    "jsonschema-rs": build_jsonschema_rs,
}


def typical_schema() -> dict[str, Any]:
    """A triage answer, as a user would write it and evocli would send it (strict form)."""
    given = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "severity": {"enum": ["low", "medium", "high", "critical"]},
            "summary": {"type": "string", "maxLength": 200},
            "tags": {"type": "array", "items": {"type": "string"}},
            "assignee": {"type": "string"},
            "findings": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "file": {"type": "string"},
                        "line": {"type": "integer", "minimum": 1},
                        "note": {"type": "string"},
                    },
                    "required": ["file", "line"],
                },
            },
        },
        "required": ["severity", "summary", "tags", "findings"],
    }
    strict: dict[str, Any] = strictify(given)
    return strict


def documents(count: int) -> list[Any]:
    """Valid answers, each parsed from its own JSON text as evocli parses an answer."""
    docs = []
    for i in range(count):
        doc = {
            "severity": ["low", "medium", "high", "critical"][i % 4],
            "summary": f"request {i} times out after the retry window",
            "tags": ["network", "retries"],
            "assignee": None if i % 3 else "dana",
            "findings": [
                {"file": "evocli/transport.py", "line": 100 + i % 50, "note": None},
                {"file": "evocli/client.py", "line": 7, "note": "retry-after is ignored"},
            ],
        }
        docs.append(json.loads(json.dumps(doc)))
    return docs


# Draft 2020-12 in brief: a validator that supports it accepts the first and refuses the second.
DRAFT_2020_12 = [
    ({"prefixItems": [{"type": "integer"}], "items": False}, [1], [1, 2]),
    ({"$defs": {"n": {"type": "integer"}}, "$ref": "#/$defs/n", "minimum": 2}, 3, 1),
    ({"properties": {"a": True}, "unevaluatedProperties": False}, {"a": 1}, {"b": 1}),
    ({"dependentRequired": {"a": ["b"]}}, {"a": 1, "b": 2}, {"a": 1}),
]


def supports_2020_12(name: str) -> str:
    """How many of the 2020-12 probes the library gets right (it may also refuse a schema)."""
    right = 0
    for schema, good, bad in DRAFT_2020_12:
        try:
            check = BUILDERS[name]({"$schema": "https://json-schema.org/draft/2020-12/schema", **schema})
            right += not check(good) and bool(check(bad))
        except Exception:
            pass
    verdict = "yes" if right == len(DRAFT_2020_12) else "no"
    return f"{verdict} ({right} of {len(DRAFT_2020_12)} probes)"


def worker(name: str, count: int) -> None:
    """In a fresh process: import (not timed), compile, check one answer, then `count` more."""
    importlib.import_module(LIBRARIES[name])
    schema, docs = typical_schema(), documents(count)
    # CPU time of this process: other work on the machine hardly moves it.
    started = time.process_time()
    check = BUILDERS[name](schema)
    compiled = time.process_time()
    first = check(docs[0])
    checked_one = time.process_time()
    errors = sum(len(check(doc)) for doc in docs)
    done = time.process_time()
    if first or errors:
        raise SystemExit(f"bench: {name} refused a valid document: {first}")
    times = {"compile": compiled - started, "one": checked_one - compiled, "many": done - checked_one}
    print(json.dumps(times))


def run_workers(runs: int, count: int) -> dict[str, list[dict[str, float]]]:
    """Fresh processes, the libraries taking turns, so drift of the machine is spread evenly."""
    results: dict[str, list[dict[str, float]]] = {name: [] for name in LIBRARIES}
    for _ in range(runs):
        for name in LIBRARIES:
            argv = [sys.executable, __file__, "--worker", name, "--documents", str(count)]
            out = subprocess.run(argv, capture_output=True, text=True, check=True)
            results[name].append(json.loads(out.stdout))
    return results


def ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def work_table(results: dict[str, list[dict[str, float]]], count: int) -> str:
    base = {key: ms([r[key] for r in results["jsonschema-rs"]]) for key in ("compile", "one", "many")}
    lines = [
        f"| library | compile | compile + 1 answer | compile + 1 + {count:,} answers | per answer "
        f"| vs jsonschema-rs (1 / {count:,}) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, runs in results.items():
        compile_ms, one_ms, many_ms = (ms([r[key] for r in runs]) for key in ("compile", "one", "many"))
        first = compile_ms + one_ms
        ratio_one = first / (base["compile"] + base["one"])
        ratio_many = many_ms / base["many"]
        lines.append(
            f"| {name} | {compile_ms:.2f} ms | {first:.2f} ms | {first + many_ms:.1f} ms "
            f"| {many_ms / count * 1000:.1f} µs | {ratio_one:.1f}x / {ratio_many:.1f}x |"
        )
    return "\n".join(lines)


# What `evocli ask` loads anyway (bench/README.md, "Where the time goes"): a validator that shares
# modules with it (typing, email.utils, socket) costs a call less than it costs a bare interpreter.
ASK_IMPORTS = "import evocli.cli, evocli.transport"


@dataclass
class Import:
    """One import measured in fresh processes against its baseline, run alternately with it."""

    code: str
    baseline: str
    wall: list[float] = field(default_factory=list)  # the process's wall time minus the baseline's
    cpu: list[float] = field(default_factory=list)  # the same for user + system CPU time
    ratios: list[float] = field(default_factory=list)  # wall time over the baseline's


def import_rows() -> list[Import]:
    """Each library against a bare interpreter, then on top of what `evocli ask` imports."""
    rows = [Import(f"import {mod}", "pass") for mod in LIBRARIES.values()]
    return rows + [Import(f"{ASK_IMPORTS}, {mod}", ASK_IMPORTS) for mod in LIBRARIES.values()]


def run_code(code: str) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of `python -c code`, from start to exit.

    CPU time is what the process itself spent: on a busy machine it moves far less than the
    wall time, which also counts the time spent waiting for a CPU.
    """
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.DEVNULL, env=clean_env())
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"bench: python -c {code!r} failed")
    return wall, usage.ru_utime + usage.ru_stime


def measure_imports(rows: list[Import], pairs: int, warmup: int) -> None:
    """A B A B ... for each row: drift of the machine falls evenly on both."""
    for row in rows:
        print(f"bench: {row.code} vs {row.baseline} ...", file=sys.stderr)
        for i in range(warmup + pairs):
            (a_wall, a_cpu), (b_wall, b_cpu) = run_code(row.code), run_code(row.baseline)
            if i >= warmup:
                row.wall.append(a_wall - b_wall)
                row.cpu.append(a_cpu - b_cpu)
                row.ratios.append(a_wall / b_wall)


def import_table(rows: list[Import]) -> str:
    lines = [
        "| python -c (A) | baseline (B) | A - B, wall | A - B, CPU | A/B, wall (p25-p75) |",
        "|---|---|---:|---:|---:|",
    ]
    for row in rows:
        lo, hi = quartiles(row.ratios)
        lines.append(
            f"| `{row.code}` | `{row.baseline}` | {ms(row.wall):+.1f} ms | {ms(row.cpu):+.1f} ms "
            f"| **{statistics.median(row.ratios):.2f}x** ({lo:.2f}-{hi:.2f}) |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--runs", type=int, default=15, help="fresh processes per library for the checks")
    parser.add_argument("--documents", type=int, default=10_000)
    parser.add_argument("--worker", choices=list(LIBRARIES), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.documents)
        return 0

    rows = import_rows()
    measure_imports(rows, args.pairs, args.warmup)
    print(f"bench: {args.runs} fresh processes per library for compile and validation ...", file=sys.stderr)
    results = run_workers(args.runs, args.documents)

    versions = ", ".join(f"{name} {importlib.metadata.version(name)}" for name in LIBRARIES)
    print(f"evocli {git_describe()}, Python {sys.version.split()[0]}, {versions}, {os.cpu_count()} CPUs")
    print(f"\nImport, {args.pairs} pairs (medians of the per-pair differences and ratios):\n")
    print(import_table(rows))
    print(f"\nCompile and validate, CPU time, medians of {args.runs} fresh processes:\n")
    print(work_table(results, args.documents))
    print()
    for name in LIBRARIES:
        print(f"- {name}: Draft 2020-12: {supports_2020_12(name)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
