"""Identity-number rules: vectorised (pyarrow.compute) against the scalar rules in a loop.

    .venv/bin/python bench/bench_identity.py [--rows 1000000] [--repeat 3]

The baseline is the same rules applied one value at a time in Python; both
must agree on every value (checked here too) before their times mean anything.
"""

from __future__ import annotations

import argparse
import time
from datetime import date

import pyarrow as pa

from rosterflow.testing import TEST_NUMBERS
from services.validator.identity import Identity, parse_identity, parse_identity_column

TODAY = date(2026, 11, 28)


def values(rows: int) -> list[str]:
    numbers = TEST_NUMBERS.read_text().split()
    # Mixed forms, as in real files: 12 digits, short with hyphen, and a few broken.
    shaped = [n if i % 3 else f"{n[2:8]}-{n[8:]}" for i, n in enumerate(numbers)]
    shaped[::97] = [n[:-1] for n in shaped[::97]]
    return (shaped * (rows // len(shaped) + 1))[:rows]


def best_of(repeat: int, run: object) -> float:
    assert callable(run)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    data = values(args.rows)
    column = pa.array(data, pa.string())

    vectorised = parse_identity_column(column, TODAY)
    scalar = [parse_identity(v, TODAY) for v in data]
    expected = [s.normalised if isinstance(s, Identity) else None for s in scalar]
    assert vectorised.normalised.to_pylist() == expected, "the two implementations disagree"

    t_vec = best_of(args.repeat, lambda: parse_identity_column(column, TODAY))
    t_loop = best_of(max(1, args.repeat - 2), lambda: [parse_identity(v, TODAY) for v in data])
    print(f"rows: {args.rows:,}")
    print(f"baseline, scalar rules in a Python loop: {t_loop:6.2f} s")
    speedup = t_loop / t_vec
    print(f"vectorised, pyarrow.compute:             {t_vec:6.2f} s  ({speedup:.0f}x faster)")


if __name__ == "__main__":
    main()
