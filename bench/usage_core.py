"""What `evocli usage` will do once prices are wired to it: one report of a ledger, printed as TSV.

Run as a process by bench/usage_bench.py, with and without prices, to time the cost column alone.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from evocli import cost, ledger_sum, report

# Prices for the models bench/gen_ledger.py writes, per million tokens (one left unpriced).
PRICES = {
    "gpt-5.2": {"input": 1.75, "cached_input": 0.175, "output": 14},
    "gpt-5.2-mini": {"input": 0.25, "cached_input": 0.025, "output": 2},
    "claude-sonnet-4.5": {"input": 3, "cached_input": 0.3, "output": 15},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--by", action="append", default=[])
    parser.add_argument("--prices", action="store_true")
    parser.add_argument("--format", default="tsv", choices=report.FORMATS)
    args = parser.parse_args()
    prices = cost.prices_from_config({"prices": PRICES}) if args.prices else None
    summary = ledger_sum.report(args.folder, args.by or "model", prices=prices)
    # (The command will also warn about summary.unpriced on stderr: one line, not timed here.)
    sys.stdout.write(report.render(summary, args.format))


if __name__ == "__main__":
    main()
