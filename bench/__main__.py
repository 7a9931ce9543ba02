"""``python -m bench [NAME ...]``: run benchmarks, write bench/results.json, print a table."""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import time
from pathlib import Path

from bench import harness

# Every bench/bench_<name>.py is a benchmark, run in name order.
BENCHMARKS = sorted(p.stem.removeprefix("bench_") for p in Path(__file__).parent.glob("bench_*.py"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*",
                        help=f"benchmarks to run (default: all of {', '.join(BENCHMARKS)})")
    args = parser.parse_args()
    names = args.names or BENCHMARKS
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")

    results: dict[str, float] = {}
    ratios: list[tuple[str, str, str]] = []
    limits: list[tuple[str, str, float]] = []
    for name in names:
        module = importlib.import_module(f"bench.bench_{name}")
        started = time.perf_counter()
        print(f"== {name}", flush=True)
        # Each benchmark starts on a fresh scratch database: what one leaves behind (a
        # backfill's 100,000 deliveries, 200,000 seeded feed rows) must not load the next.
        harness.prepare_database()
        results.update(module.run())
        ratios.extend(module.RATIOS)
        limits.extend(getattr(module, "LIMITS", []))
        print(f"   done in {time.perf_counter() - started:.0f}s", flush=True)

    out = Path(__file__).with_name("results.json")
    out.write_text(json.dumps(results, indent=2) + "\n")
    harness.print_table(results, ratios, limits)
    print(f"\n{platform.python_implementation()} {platform.python_version()}, written to {out}")


if __name__ == "__main__":
    main()
