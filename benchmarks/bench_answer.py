"""Answer endpoint benchmark: a real ``supportbot serve`` process, loopback HTTP.

1. Start-up: seconds from spawning ``supportbot serve`` to the first ``/readyz`` 200 (the model
   warm and the index open), for each server the benchmark starts.
2. Offline (extractive) mode: 16 concurrent clients POST /api/v1/answer for ``--seconds``
   (default 30): p50/p95/p99 latency and answers/s.
3. The model's ceiling, in the same run on the same cores (the server stopped): batched query
   embeddings of the same questions through the query embedder the server uses, at batch sizes
   up to the client count (the largest batch the query batcher can form), as queries/s.
   Answers/s is reported as a share of that ceiling: what the rest of the answer path costs.
4. Claude mode against the fake Messages API server (tests/fakes) with a fixed time-to-first-
   token: the client-measured time to the first streamed token minus that TTFT is the
   pipeline's own overhead (retrieval, prompt, HTTP, SSE), reported as a share of the TTFT,
   for one client at a time and for 16 at once.

It imports the installed ``supportbot`` package (``make install``); the fake Claude server is
loaded from its file, as it is test code and not part of the package.
Usage: python benchmarks/bench_answer.py [--seconds 30] [--clients 16] [--ttft 1.0]
       [--query-embedder auto|torch|onnx] [--no-claude] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import numpy as np

from app.config import Settings
from app.knowledge.embedder import Embedder, get_embedder
from app.knowledge.onnx_embedder import get_query_embedder, load_onnx_query_embedder
from app.knowledge.onnx_export import ensure_onnx_export

ROOT = Path(__file__).resolve().parents[1]
SUPPORTBOT = Path(sys.executable).with_name("supportbot")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _questions() -> list[str]:
    rows = [json.loads(line) for line in
            (ROOT / "knowledge/eval/retrieval_questions.jsonl").read_text().splitlines()]
    return [r["question"] for r in rows]


def _fake_claude() -> ModuleType:
    """tests/fakes/claude_server.py, loaded by path (test code is not installed)."""
    path = ROOT / "tests" / "fakes" / "claude_server.py"
    spec = importlib.util.spec_from_file_location("bench_fake_claude", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


class Server:
    """``supportbot serve`` in a subprocess on a free port; ``ready_s`` is its start-up time."""

    def __init__(self, data_dir: Path, env: dict[str, str]) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full_env = {**os.environ, "SUPPORTBOT_DATA_DIR": str(data_dir),
                    "SUPPORTBOT_LOG_LEVEL": "warning", **env}
        started = time.perf_counter()
        self.proc = subprocess.Popen([str(SUPPORTBOT), "serve", "--host", "127.0.0.1", "--port",
                                      str(self.port)], env=full_env, cwd=ROOT,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.listening_s: float | None = None
        deadline = started + 120
        with httpx.Client(base_url=self.url, timeout=2) as http:
            while time.perf_counter() < deadline:
                try:
                    r = http.get("/readyz")
                    if self.listening_s is None:
                        self.listening_s = time.perf_counter() - started
                    if r.status_code == 200:
                        self.ready_s = time.perf_counter() - started
                        return
                except httpx.HTTPError:
                    pass
                if self.proc.poll() is not None:
                    raise RuntimeError(self.proc.stderr.read().decode() if self.proc.stderr
                                       else "server exited")
                time.sleep(0.02)  # fine polling: start-up is measured to a few tens of ms
        raise RuntimeError("server did not become ready in 120 s")

    def loaded_libraries(self) -> dict[str, bool]:
        """Which inference runtimes the server process has mapped (Linux; empty elsewhere)."""
        try:
            maps = Path(f"/proc/{self.proc.pid}/maps").read_text()
        except OSError:
            return {}
        return {"torch": "libtorch_cpu" in maps or "libtorch.so" in maps,
                "onnxruntime": "onnxruntime_pybind11_state" in maps}

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
            "p95_ms": float(np.percentile(lat, 95)), "p99_ms": float(np.percentile(lat, 99)),
            "load_generator": "httpx"}


_WRK_SCRIPT = """
bodies = {%s}
counter = 0
request = function()
  counter = counter + 1
  local body = bodies[(counter %% #bodies) + 1]
  return wrk.format("POST", "/api/v1/answer", {["Content-Type"] = "application/json"}, body)
end
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format("RESULT %%d %%d %%f %%f %%f %%f\\n", summary.requests, errors,
    summary.duration / 1e6, latency:percentile(50) / 1e3, latency:percentile(95) / 1e3,
    latency:percentile(99) / 1e3))
end
"""


def load_wrk(url: str, clients: int, seconds: float, questions: list[str]) -> dict[str, Any]:
    """The same load from wrk (C, one thread per core): a load generator that takes far less
    of the shared cores than Python's httpx, so more of them serve answers."""
    def lua(i: int, text: str) -> str:  # the same bodies as the httpx clients send
        return "[[" + json.dumps({"question": text, "user_id": f"u{i}"}) + "]]"

    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(_WRK_SCRIPT % ", ".join(lua(i, q) for i, q in enumerate(questions)
                                        if "]]" not in q))
        script = f.name
    try:
        done = subprocess.run(
            ["wrk", "-t", "1", "-c", str(clients), "-d", f"{seconds:.0f}s", "--timeout", "30s",
             "-s", script, url], capture_output=True, text=True, check=True)
    finally:
        os.unlink(script)
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("RESULT "))
    n, errors, elapsed, p50, p95, p99 = (float(x) for x in line.split()[1:])
    return {"clients": clients, "seconds": elapsed, "answers": int(n - errors),
            "errors": int(errors), "answers_per_s": (n - errors) / elapsed, "p50_ms": p50,
            "p95_ms": p95, "p99_ms": p99, "load_generator": "wrk"}


def query_embedder(settings: Settings, which: str, server: dict[str, bool]) -> Embedder:
    """The query embedder the server uses: as asked, else judged from the runtimes the server
    process loaded, else by ``get_query_embedder``'s rule (ONNX when a current export exists)."""
    if which == "auto" and server:
        if server.get("onnxruntime") and not server.get("torch"):
            which = "onnx"
        elif server.get("torch") and not server.get("onnxruntime"):
            which = "torch"
    if which == "onnx":
        found = load_onnx_query_embedder(settings)
        if found is None:
            raise RuntimeError("no current ONNX export in the data dir")
        return found
    if which == "torch":
        return get_embedder(settings)
    return get_query_embedder(settings)


def ceiling(embedder: Embedder, questions: list[str], clients: int,
            seconds: float) -> dict[str, Any]:
    """Queries/s of the model alone, batched as the query batcher batches (≤ ``clients``)."""
    sizes = sorted({s for s in (1, 2, 4, 8, 16, 32) if s < clients} | {clients})
    per_size: dict[str, float] = {}
    embedder.embed_documents(questions[:clients])  # warm-up (allocations, first-run paths)
    for size in sizes:
        done, i = 0, 0
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            batch = [questions[(i + k) % len(questions)] for k in range(size)]
            i += size
            embedder.embed_documents(batch)
            done += size
        per_size[str(size)] = done / (time.perf_counter() - started)
    best = max(per_size, key=per_size.__getitem__)
    return {"embedder": type(embedder).__name__, "batch_size": embedder.batch_size,
            "queries_per_s_by_batch": per_size, "queries_per_s": per_size[best],
            "best_batch": int(best)}


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
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--ttft", type=float, default=1.0)
    ap.add_argument("--ceiling-seconds", type=float, default=3.0,
                    help="seconds per batch size when measuring the model's ceiling")
    ap.add_argument("--query-embedder", choices=("auto", "torch", "onnx"), default="auto",
                    help="embedder for the ceiling; 'onnx' also exports into the data dir before "
                         "the server starts (default: judged from what the server loaded)")
    ap.add_argument("--no-claude", action="store_true", help="skip the Claude-mode part")
    ap.add_argument("--load", choices=("auto", "wrk", "httpx"), default="auto",
                    help="offline load generator: wrk when installed (apt-get install wrk), "
                         "else Python httpx; 'auto' runs both when wrk is there")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    questions = _questions()
    result: dict[str, Any] = {"machine": f"{len(os.sched_getaffinity(0))} cpu"}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        env = {**os.environ, "SUPPORTBOT_DATA_DIR": str(data)}
        subprocess.run([str(SUPPORTBOT), "ingest", str(ROOT / "knowledge"), "--json"],
                       check=True, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
        # As the server sees them: its environment, and the .env file of its working directory.
        settings = Settings(_env_file=ROOT / ".env", data_dir=data)  # type: ignore[call-arg]
        if args.query_embedder == "onnx":
            started = time.perf_counter()
            ensure_onnx_export(settings)
            result["onnx_export_s"] = time.perf_counter() - started
        server = Server(data, {"ANTHROPIC_API_KEY": ""})
        use_wrk = args.load == "wrk" or (args.load == "auto" and shutil.which("wrk"))
        try:
            asyncio.run(load(server.url, args.clients, 3, questions))  # warm-up
            if args.load != "wrk":
                result["offline_httpx"] = asyncio.run(load(server.url, args.clients,
                                                           args.seconds, questions))
            result["offline"] = (load_wrk(server.url, args.clients, args.seconds, questions)
                                 if use_wrk else result["offline_httpx"])
            runtimes = server.loaded_libraries()
        finally:
            server.close()
        result["startup"] = {"offline_listening_s": server.listening_s,
                             "offline_ready_s": server.ready_s, "server_loaded": runtimes}
        # The ceiling with the server stopped, so the model has the cores to itself.
        embedder = query_embedder(settings, args.query_embedder, runtimes)
        result["ceiling"] = ceiling(embedder, questions, args.clients, args.ceiling_seconds)
        for key in ("offline", "offline_httpx"):
            if key in result:
                result[key]["share_of_ceiling"] = (result[key]["answers_per_s"]
                                                   / result["ceiling"]["queries_per_s"])
        if not args.no_claude:
            result.update(claude_mode(data, args, questions))
    report(result, args.json)


def claude_mode(data: Path, args: argparse.Namespace, questions: list[str]) -> dict[str, Any]:
    fakes = _fake_claude()
    out: dict[str, Any] = {}
    with fakes.FakeClaudeServer(ttft=args.ttft, delta_delay=0.005) as fake:
        server = Server(data, {"ANTHROPIC_API_KEY": "sk-bench",
                               "SUPPORTBOT_CLAUDE_BASE_URL": fake.url,
                               "SUPPORTBOT_CLAUDE_MODEL": "claude-bench"})
        out["claude_ready_s"] = server.ready_s
        try:
            asyncio.run(first_token(server.url, 1, 2, questions))  # warm-up
            single = asyncio.run(first_token(server.url, 1, 20, questions))
            many = asyncio.run(first_token(server.url, args.clients, 3, questions))
        finally:
            server.close()
    for name, samples in (("claude_1_client", single), ("claude_16_clients", many)):
        over = (np.array(samples) - args.ttft) * 1000
        out[name] = {"ttft_s": args.ttft, "requests": len(samples),
                     "overhead_p50_ms": float(np.percentile(over, 50)),
                     "overhead_p95_ms": float(np.percentile(over, 95)),
                     "overhead_share_p50": float(np.percentile(over, 50)) / 1000 / args.ttft}
    return out


def report(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(result, indent=2))
        return
    s, o, c = result["startup"], result["offline"], result["ceiling"]
    ready = f"start to /readyz 200: {s['offline_ready_s']:.2f}s"
    if "claude_ready_s" in result:
        ready += f" (second start {result['claude_ready_s']:.2f}s)"
    print(f"{ready}; listening after {s['offline_listening_s']:.2f}s; server loaded "
          f"{', '.join(k for k, v in s['server_loaded'].items() if v) or 'unknown'}")
    for key in ("offline_httpx", "offline"):
        if key == "offline_httpx" and result.get(key) is result["offline"]:
            continue
        if key in result:
            o = result[key]
            print(f"offline ({o['load_generator']} load), {o['clients']} clients, "
                  f"{o['seconds']:.0f}s: {o['answers']} answers, {o['answers_per_s']:.1f} "
                  f"answers/s = {100 * o['share_of_ceiling']:.0f}% of the ceiling, p50 "
                  f"{o['p50_ms']:.0f} ms, p95 {o['p95_ms']:.0f} ms, p99 {o['p99_ms']:.0f} ms, "
                  f"errors {o['errors']}")
    o = result["offline"]
    by_batch = ", ".join(f"{k}: {v:.0f}" for k, v in c["queries_per_s_by_batch"].items())
    print(f"model ceiling ({c['embedder']}, forward batch {c['batch_size']}): "
          f"{c['queries_per_s']:.0f} queries/s at batch {c['best_batch']} ({by_batch}); "
          f"answers/s = {100 * o['share_of_ceiling']:.0f}% of the ceiling")
    for name in ("claude_1_client", "claude_16_clients"):
        if name not in result:
            continue
        q = result[name]
        print(f"{name}: fake TTFT {q['ttft_s'] * 1000:.0f} ms; pipeline overhead p50 "
              f"{q['overhead_p50_ms']:.1f} ms ({100 * q['overhead_share_p50']:.1f}% of TTFT), "
              f"p95 {q['overhead_p95_ms']:.1f} ms")


if __name__ == "__main__":
    main()
