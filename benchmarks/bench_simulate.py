"""Benchmark the simulator: people per second and peak memory, 1M and 10M people.

Run on demand (``make benchmark``), never in the test suite. Each run is a fresh
``rlsepi simulate`` process; peak memory is the largest resident set summed over the
process and its workers, sampled from /proc every 20 ms. The wall time includes start-up
(imports, solving the model) and the Parquet write, as a user would see it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def tree_rss_kib(pid: int) -> int:
    """Resident memory of ``pid`` and its descendants, in KiB (Linux /proc)."""
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            with open(f"/proc/{p}/task/{p}/children") as fh:
                stack += [int(c) for c in fh.read().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def measure(cmd: list[str]) -> tuple[float, float]:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, tree_rss_kib(proc.pid))
        time.sleep(0.02)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"benchmark command failed: {proc.stderr.read().decode()}")
    return seconds, peak / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,10000000", help="comma-separated cohort sizes")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    args = parser.parse_args()
    exe = [sys.executable, "-m", "rlsepi.cli"]
    print(f"{'people':>12} {'workers':>7} {'seconds':>8} {'people/s':>12} {'peak MiB':>9} {'file MiB':>9}")
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        for n in map(int, args.sizes.split(",")):
            for w in map(int, args.workers.split(",")):
                out = Path(tmp) / f"c{n}_{w}.parquet"
                secs, peak = measure([*exe, "simulate", "--n", str(n), "--seed", "1", "--out", str(out),
                                      "--workers", str(w), "--quiet"])
                size = out.stat().st_size / 2**20
                print(f"{n:>12,} {w:>7} {secs:>8.2f} {n / secs:>12,.0f} {peak:>9.0f} {size:>9.1f}")
                out.unlink()


if __name__ == "__main__":
    main()
