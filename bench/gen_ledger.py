"""Write a synthetic usage ledger of N records (monthly files, evocli's own line format)."""

from __future__ import annotations

import argparse
import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from evocli.ledger import CallRecord, encode_line, month_file

START = datetime(2026, 5, 1, tzinfo=UTC)
SPAN = timedelta(days=184)  # six months: six monthly files
MODELS = ["gpt-5.2", "gpt-5.2", "gpt-5.2", "gpt-5.2-mini", "claude-sonnet-4.5", "gemini-2.5-pro"]
COMMANDS = ["ask", "ask", "ask", "chat-file", "batch"]
TAGS = [None, None, None, "nightly-report", "ci", "pr-review", "cron-digest"]
FAILURES = [(429, 75), (500, 75), (None, 75), (401, 77), (400, 65)]


def record(rng: random.Random, i: int) -> CallRecord:
    """One plausible call: mostly successes, about 3% failures."""
    command, model, tag = rng.choice(COMMANDS), rng.choice(MODELS), rng.choice(TAGS)
    stream = rng.random() < 0.3
    if rng.random() < 0.03:
        status, code = rng.choice(FAILURES)
        return CallRecord(command=command, model=model, ok=False, exit_code=code, http_status=status,
                          latency_ms=rng.randint(50, 120_000), attempts=3 if code == 75 else 1,
                          stream=stream, tag=tag)
    prompt = rng.randint(8, 6000)
    completion = rng.randint(1, 3000)
    usage = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {
            "cached_tokens": rng.choice([0, 0, prompt // 2]),
            # About one call in ten sends an image.
            "image_tokens": min(prompt, 765) if rng.random() < 0.1 else 0,
        },
        "completion_tokens_details": {"reasoning_tokens": rng.randint(0, completion)},
    }
    return CallRecord(command=command, model=model, ok=True, exit_code=0, http_status=200,
                      latency_ms=rng.randint(300, 40_000), attempts=1, stream=stream, tag=tag,
                      id=f"chatcmpl-{i:016x}", finish_reason="stop", usage=usage)


def generate(folder: Path, count: int, seed: int = 1) -> None:
    """Write `count` records spread evenly over six months, in time order, one file per month."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.jsonl"):
        old.unlink()
    step = SPAN / count
    lines: dict[Path, list[bytes]] = {}
    for i in range(count):
        now = START + step * i
        lines.setdefault(month_file(folder, now), []).append(encode_line(record(rng, i), now))
        if len(lines) > 1:  # a month is complete: write it out and free it
            path = next(iter(lines))
            path.write_bytes(b"".join(lines.pop(path)))
    for path, month in lines.items():
        path.write_bytes(b"".join(month))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder", type=Path, help="the ledger folder to (re)fill")
    parser.add_argument("-n", "--records", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    generate(args.folder, args.records, args.seed)
    size = sum(p.stat().st_size for p in args.folder.glob("*.jsonl"))
    print(f"wrote {args.records:,} records ({size / 1e6:.0f} MB) to {args.folder}")


if __name__ == "__main__":
    main()
