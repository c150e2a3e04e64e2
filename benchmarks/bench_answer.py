"""Answer endpoint benchmark: a real ``supportbot serve`` process, loopback HTTP.

1. Offline (extractive) mode: 16 concurrent clients POST /api/v1/answer for ``--seconds``
   (default 30): p50/p95/p99 latency and answers/s.
2. Claude mode against the fake Messages API server (tests/fakes) with a fixed time-to-first-
   token: the client-measured time to the first streamed token minus that TTFT is the
   pipeline's own overhead (retrieval, prompt, HTTP, SSE), reported as a share of the TTFT,
   for one client at a time and for 16 at once.
Usage: python benchmarks/bench_answer.py [--seconds 30] [--clients 16] [--ttft 1.0] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _questions() -> list[str]:
    rows = [json.loads(line) for line in
            (ROOT / "knowledge/eval/retrieval_questions.jsonl").read_text().splitlines()]
    return [r["question"] for r in rows]


class Server:
    """``supportbot serve`` in a subprocess on a free port."""

    def __init__(self, data_dir: Path, env: dict[str, str]) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full_env = {**os.environ, "SUPPORTBOT_DATA_DIR": str(data_dir),
                    "SUPPORTBOT_LOG_LEVEL": "warning", **env}
        exe = Path(sys.executable).with_name("supportbot")
        self.proc = subprocess.Popen([str(exe), "serve", "--host", "127.0.0.1", "--port",
                                      str(self.port)], env=full_env, cwd=ROOT,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(self.proc.stderr.read().decode() if self.proc.stderr else "")
            time.sleep(0.3)
        raise RuntimeError("server did not become ready in 120 s")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


async def load(url: str, clients: int, seconds: float, questions: list[str]) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds

    async def client(n: int) -> None:
        nonlocal errors
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            i = n
            while time.perf_counter() < stop:
                q = questions[i % len(questions)]
                i += clients
                t0 = time.perf_counter()
                r = await http.post("/api/v1/answer", json={"question": q, "user_id": f"u{i}"})
                if r.status_code != 200:
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - t0)

    started = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(clients)))
    elapsed = time.perf_counter() - started
    lat = np.array(latencies) * 1000
    return {"clients": clients, "seconds": elapsed, "answers": len(lat), "errors": errors,
            "answers_per_s": len(lat) / elapsed, "p50_ms": float(np.percentile(lat, 50)),
            "p95_ms": float(np.percentile(lat, 95)), "p99_ms": float(np.percentile(lat, 99))}


async def first_token(url: str, clients: int, rounds: int, questions: list[str]) -> list[float]:
    """Client-side time from request to the first ``delta`` SSE event, in seconds."""
    out: list[float] = []

    async def one(http: httpx.AsyncClient, q: str) -> None:
        t0 = time.perf_counter()
        async with http.stream("POST", "/api/v1/answer", json={"question": q},
                               headers={"accept": "text/event-stream"}) as r:
            seen = False
            async for line in r.aiter_lines():
                if not seen and line.startswith("event: delta"):
                    out.append(time.perf_counter() - t0)
                    seen = True

    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        for r in range(rounds):
            batch = [questions[(r * clients + c) % len(questions)] for c in range(clients)]
            await asyncio.gather(*(one(http, q) for q in batch))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--ttft", type=float, default=1.0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    from tests.fakes.claude_server import FakeClaudeServer

    questions = _questions()
    result: dict[str, Any] = {"machine": f"{os.cpu_count()} cpu"}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        subprocess.run([str(Path(sys.executable).with_name("supportbot")), "ingest",
                        str(ROOT / "knowledge"), "--json"], check=True, cwd=ROOT,
                       env={**os.environ, "SUPPORTBOT_DATA_DIR": str(data)},
                       stdout=subprocess.DEVNULL)
        server = Server(data, {"ANTHROPIC_API_KEY": ""})
        try:
            asyncio.run(load(server.url, args.clients, 3, questions))  # warm-up
            result["offline"] = asyncio.run(load(server.url, args.clients, args.seconds,
                                                 questions))
        finally:
            server.close()
        with FakeClaudeServer(ttft=args.ttft, delta_delay=0.005) as fake:
            server = Server(data, {"ANTHROPIC_API_KEY": "sk-bench",
                                   "SUPPORTBOT_CLAUDE_BASE_URL": fake.url,
                                   "SUPPORTBOT_CLAUDE_MODEL": "claude-bench"})
            try:
                asyncio.run(first_token(server.url, 1, 2, questions))  # warm-up
                single = asyncio.run(first_token(server.url, 1, 20, questions))
                many = asyncio.run(first_token(server.url, args.clients, 3, questions))
            finally:
                server.close()
        for name, samples in (("claude_1_client", single), ("claude_16_clients", many)):
            over = (np.array(samples) - args.ttft) * 1000
            result[name] = {"ttft_s": args.ttft, "requests": len(samples),
                            "overhead_p50_ms": float(np.percentile(over, 50)),
                            "overhead_p95_ms": float(np.percentile(over, 95)),
                            "overhead_share_p50": float(np.percentile(over, 50)) / 1000
                            / args.ttft}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    o = result["offline"]
    print(f"offline, {o['clients']} clients, {o['seconds']:.0f}s: {o['answers']} answers, "
          f"{o['answers_per_s']:.1f} answers/s, p50 {o['p50_ms']:.0f} ms, p95 {o['p95_ms']:.0f} "
          f"ms, p99 {o['p99_ms']:.0f} ms, errors {o['errors']}")
    for name in ("claude_1_client", "claude_16_clients"):
        c = result[name]
        print(f"{name}: fake TTFT {c['ttft_s'] * 1000:.0f} ms; pipeline overhead p50 "
              f"{c['overhead_p50_ms']:.1f} ms ({100 * c['overhead_share_p50']:.1f}% of TTFT), "
              f"p95 {c['overhead_p95_ms']:.1f} ms")


if __name__ == "__main__":
    main()
