"""Load on ``rlsepi serve``: risk requests from concurrent clients on loopback.

Run on demand (``python benchmarks/bench_web.py [--requests 2000] [--clients 8]``). Starts the
real command (``rlsepi serve`` on a free port of 127.0.0.1, one uvicorn process), sends
``--requests`` POST /api/risk requests from ``--clients`` threads, each on its own keep-alive
connection, with people drawn from a seeded generator (every field varied, some left out), and
reports latency percentiles, throughput and errors. Every answer must be HTTP 200 with a
probability; a sample is compared with :func:`rlsepi.risk.individual_risk`. Bounded: the
whole run stops after ``--timeout`` seconds. Only loopback is ever contacted.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
GENOTYPES = {"rs2300478": ("GG", "GT", "TT"), "rs9357271": ("TT", "TC", "CC"),
             "rs1975197": ("AA", "AG", "GG"), "rs4626664": ("AA", "AG", "GG")}


def people(n: int, rng: np.random.Generator) -> list[dict]:
    out = []
    for _ in range(n):
        p: dict = {}
        if rng.random() < 0.9:
            p["age"] = int(rng.integers(18, 100))
        if rng.random() < 0.9:
            p["sex"] = str(rng.choice(["female", "male"]))
        if p.get("sex") == "female" and 18 <= p.get("age", 99) <= 49 and rng.random() < 0.3:
            p["pregnant"] = True
            p["trimester"] = int(rng.integers(1, 4))
        if rng.random() < 0.8:
            p["ferritin"] = round(float(np.exp(rng.normal(4.2, 0.8))), 1)
        p["genotypes"] = {rs: str(rng.choice(calls)) for rs, calls in GENOTYPES.items() if rng.random() < 0.85}
        out.append(p)
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--timeout", type=float, default=300.0, help="stop the whole run after this many seconds")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()

    port = _free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    server = subprocess.Popen([sys.executable, "-m", "rlsepi.cli", "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the server did not start: {server.stderr.read() if server.stderr else ''}")
                time.sleep(0.1)
        bodies = [json.dumps(p).encode() for p in people(args.requests, np.random.default_rng(args.seed))]
        stop_at = time.monotonic() + args.timeout
        latencies = np.full(len(bodies), np.nan)
        answers: list[dict | None] = [None] * len(bodies)
        errors: list[str] = []
        lock = threading.Lock()

        def client(indices: range) -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            headers = {"Content-Type": "application/json"}
            for _ in range(5):  # warm-up, not counted
                conn.request("POST", "/api/risk", body=b"{}", headers=headers)
                conn.getresponse().read()
            for i in indices:
                if time.monotonic() > stop_at:
                    with lock:
                        errors.append(f"request {i}: not sent, the run passed --timeout")
                    continue
                t0 = time.perf_counter()
                try:
                    conn.request("POST", "/api/risk", body=bodies[i], headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                except (OSError, http.client.HTTPException) as exc:
                    with lock:
                        errors.append(f"request {i}: {exc!r}")
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                    continue
                latencies[i] = time.perf_counter() - t0
                if resp.status != 200:
                    with lock:
                        errors.append(f"request {i}: HTTP {resp.status} {data[:200]!r}")
                    continue
                answers[i] = json.loads(data)
            conn.close()

        threads = [threading.Thread(target=client, args=(range(k, len(bodies), args.clients),))
                   for k in range(args.clients)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - start
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()

    from rlsepi.io import to_jsonable
    from rlsepi.risk import individual_risk

    sample = range(0, len(bodies), max(1, len(bodies) // 50))
    mismatches = sum(1 for i in sample if answers[i] is not None and answers[i] !=
                     json.loads(json.dumps(to_jsonable(individual_risk(**json.loads(bodies[i])).to_dict()))))
    ok = latencies[~np.isnan(latencies)] * 1000
    result = {
        "requests": len(bodies), "clients": args.clients, "completed_ok": sum(a is not None for a in answers),
        "errors": len(errors), "checked_against_individual_risk": len(sample), "mismatches": mismatches,
        "wall_seconds": round(wall, 3), "throughput_per_second": round(len(ok) / wall, 1),
        "latency_ms": {q: round(float(np.percentile(ok, p)), 2) for q, p in
                       (("p50", 50), ("p90", 90), ("p95", 95), ("p99", 99), ("max", 100))} if len(ok) else {},
        "cpus": os.cpu_count(),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        lat = result["latency_ms"]
        print(f"{result['requests']} POST /api/risk from {args.clients} concurrent clients on loopback "
              f"({result['cpus']} CPUs, one uvicorn process)")
        print(f"  completed: {result['completed_ok']}, errors: {result['errors']}, "
              f"mismatches with individual_risk: {mismatches}/{len(sample)}")
        print(f"  wall {wall:.2f} s, throughput {result['throughput_per_second']} requests/s")
        print("  latency ms: " + ", ".join(f"{k} {v}" for k, v in lat.items()))
        for e in errors[:5]:
            print("  error: " + e)
    return 0 if not errors and not mismatches else 1


if __name__ == "__main__":
    sys.exit(main())
