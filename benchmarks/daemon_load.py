"""Load benchmark for ``visage serve``: N clients x M requests on loopback against the fake engine.

Starts the daemon as a subprocess (``--model fake:...``, fresh state folder, no ZeroConf), drives it
from N client threads (each its own `VisageClient`, submitting all of its requests, then waiting for
all of them), and prints:

* request throughput: generate requests accepted per second (send -> `accepted`, all clients together);
* reply latency percentiles: send -> `accepted`, and send -> `done`;
* GPU batch fill: mean jobs per engine call / --max-batch, from the daemon's job database.

Not a test and never an assertion: run it by hand and record the figures in the README.

    python benchmarks/daemon_load.py --clients 8 --requests 50 --delay 0.05 --max-batch 8
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from visage.bridge import const
from visage.bridge.client import DaemonAddress, VisageClient


def percentiles(values: list[float], points: tuple[int, ...] = (50, 90, 99)) -> str:
    if not values:
        return "n/a"
    ordered = sorted(values)
    parts = [
        f"p{p} {ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]:.4g}" for p in points
    ]
    return ", ".join(parts) + f", max {ordered[-1]:.4g}"


def start_daemon(root: Path, args: argparse.Namespace) -> tuple[subprocess.Popen[bytes], DaemonAddress]:
    state = root / "state"
    model = f"fake:delay={args.delay},steps={args.steps},seconds={args.seconds}"
    command = [
        sys.executable,
        "-m",
        "visage.bridge.cli",
        "serve",
        "--port",
        "0",
        "--tcp-port",
        "0",
        "--state-dir",
        str(state),
        "--allow-dir",
        str(root),
        "--model",
        model,
        "--no-zeroconf",
        "--max-batch",
        str(args.max_batch),
        "--log-level",
        "WARNING",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=open(root / "daemon.err", "wb"))
    endpoint = state / const.ENDPOINT_FILE_NAME
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            info = json.loads(endpoint.read_text())
            if info["pid"] == process.pid:
                return process, DaemonAddress(
                    info["host"], info["udp_port"], info["tcp_port"], "endpoint-file"
                )
        except (OSError, ValueError):
            pass
        time.sleep(0.02)
    process.kill()
    raise SystemExit(f"daemon did not start: {(root / 'daemon.err').read_text()}")


def batch_fill(db_path: Path, max_batch: int) -> tuple[int, float]:
    """(engine calls, mean jobs per call) over jobs that ran on the engine (not cache hits)."""
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT batch_size FROM jobs WHERE state = 'done' AND cached = 0").fetchall()
    sizes = [r[0] for r in rows if r[0]]
    if not sizes:
        return 0, 0.0
    calls = sum(1.0 / s for s in sizes)
    return round(calls), len(sizes) / calls


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=50, help="per client")
    parser.add_argument(
        "--delay", type=float, default=0.05, help="fake engine seconds per batch (the 'GPU call')"
    )
    parser.add_argument("--steps", type=int, default=4, help="fake engine progress steps per batch")
    parser.add_argument("--seconds", type=float, default=0.1, help="audio seconds per output file")
    parser.add_argument("--max-batch", type=int, default=8)
    parser.add_argument("--transport", choices=["udp", "tcp"], default="udp")
    parser.add_argument(
        "--repeat", type=float, default=0.0, help="fraction of requests repeating an earlier one"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="visage-load-") as tmp:
        root = Path(tmp)
        media = root / "clip.mp4"
        media.write_bytes(bytes(range(256)) * 4096)  # 1 MiB: hashed once, then memoised
        process, address = start_daemon(root, args)
        accept_latency: list[float] = []
        done_latency: list[float] = []
        errors: list[str] = []
        submitted_at: list[float] = []  # when each client had all its requests accepted
        lock = threading.Lock()
        barrier = threading.Barrier(args.clients + 1)

        def client(index: int) -> None:
            with VisageClient(address, transport=args.transport, timeout_s=30.0) as c:
                barrier.wait()
                sent: dict[str, float] = {}
                rng = random.Random(index)
                for n in range(args.requests):
                    # distinct direction per request (no cache hit) unless it repeats an earlier one
                    k = rng.randrange(n) if n and rng.random() < args.repeat else n
                    yaw = ((index * args.requests + k) * 0.01) % 180.0
                    t0 = time.perf_counter()
                    try:
                        job_id = c.submit(media, yaw=yaw, pitch=0.0, end=args.seconds)
                    except Exception as exc:
                        with lock:
                            errors.append(repr(exc))
                        continue
                    with lock:
                        accept_latency.append(time.perf_counter() - t0)
                    sent[job_id] = t0
                with lock:
                    submitted_at.append(time.perf_counter())
                for job_id, t0 in sent.items():
                    try:
                        c.wait(job_id, timeout_s=300)
                    except Exception as exc:
                        with lock:
                            errors.append(repr(exc))
                        continue
                    with lock:
                        done_latency.append(time.perf_counter() - t0)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
        for t in threads:
            t.start()
        barrier.wait()
        start = time.perf_counter()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - start
        process.send_signal(signal.SIGTERM)
        process.wait(60)
        calls, mean_batch = batch_fill(root / "state" / const.STATE_DB_NAME, args.max_batch)

    total = args.clients * args.requests
    submit_span = max(submitted_at) - start  # all clients submitting concurrently, each one request at a time
    print(
        f"daemon_load: {args.clients} clients x {args.requests} requests = {total} jobs over"
        f" {args.transport}; fake engine {args.delay} s/batch, max batch {args.max_batch}"
    )
    print(f"requests/s (accepted, all clients): {len(accept_latency) / submit_span:.0f}")
    print(f"accepted latency ms: {percentiles([x * 1000 for x in accept_latency])}")
    print(f"done latency s: {percentiles(done_latency)}")
    print(
        f"completed: {len(done_latency)}/{total} in {elapsed:.2f} s"
        f" = {len(done_latency) / elapsed:.1f} jobs/s; errors: {len(errors)}"
    )
    print(
        f"batch fill: {calls} engine calls, mean {mean_batch:.2f} jobs/call = "
        f"{100 * mean_batch / args.max_batch:.0f}% of --max-batch"
        + (f"; median done latency {statistics.median(done_latency):.3f} s" if done_latency else "")
    )
    for line in errors[:5]:
        print("  error:", line)
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main())
