"""A fake Anthropic Messages API on 127.0.0.1, for tests and benchmarks that must not reach Claude.

It speaks ``POST /v1/messages`` like the real API: JSON messages, or Server-Sent Events in the
real order when ``"stream": true``; error bodies in the real ``{"type": "error", ...}`` shape;
``request-id`` and ``retry-after`` headers. Each request takes the next scripted ``Behaviour``
from a queue; when the queue is empty it answers from the first ``<passage id="...">`` in the
request, so a benchmark can run against it unscripted.

Example:
    >>> with FakeClaudeServer(ttft=0.05) as server:
    ...     server.enqueue(Behaviour.rate_limited(retry_after=1), Behaviour.reply("Hi"))
    ...     client = anthropic.Anthropic(api_key="k", base_url=server.url)
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import socket
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

Kind = Literal["reply", "error", "hang", "die"]
Death = Literal["close", "error_event", "eof"]
_Problem = tuple[int, str, str]  # status, error type, message

_PASSAGE_RE = re.compile(r'<passage id="([^"]+)"[^>]*>\s*(.*?)</passage>', re.DOTALL)


def meta_block(
    cited_ids: list[str],
    needs_human: bool = False,
    reason: str | None = None,
    confidence: float | None = 0.8,
) -> str:
    """The ``<meta>`` block the provider's output contract asks the model to end with."""
    meta = {
        "cited_ids": cited_ids,
        "needs_human": needs_human,
        "reason": reason,
        "confidence": confidence,
    }
    return f"\n\n<meta>{json.dumps(meta)}</meta>"


@dataclass(frozen=True)
class Behaviour:
    """What the server does for one request; build these with the classmethods."""

    kind: Kind
    text: str = ""
    chunks: tuple[str, ...] | None = None  # explicit stream deltas (default: split by chunk_size)
    status: int = 200
    error_type: str = ""
    message: str = ""
    retry_after: float | None = None
    seconds: float = 0.0
    after_chunks: int = 0
    how: Death = "close"
    stop_reason: str = "end_turn"
    ttft: float | None = None  # overrides the server's time-to-first-token for this request

    @classmethod
    def reply(cls, text: str, *, chunks: list[str] | None = None, stop_reason: str = "end_turn",
              ttft: float | None = None) -> Behaviour:
        """The model outputs exactly ``text`` (include a meta block, or not, as the test needs)."""
        return cls("reply", text=text, chunks=tuple(chunks) if chunks else None,
                   stop_reason=stop_reason, ttft=ttft)

    @classmethod
    def error(cls, status: int, error_type: str, message: str,
              retry_after: float | None = None) -> Behaviour:
        """An HTTP error with the real error body."""
        return cls("error", status=status, error_type=error_type, message=message,
                   retry_after=retry_after)

    @classmethod
    def rate_limited(cls, retry_after: float | None = 1) -> Behaviour:
        """429 ``rate_limit_error``, with a ``retry-after`` header when given."""
        return cls.error(429, "rate_limit_error", "Number of requests has exceeded your rate limit",
                         retry_after)

    @classmethod
    def server_error(cls, status: int = 500) -> Behaviour:
        """500/502/503 ``api_error``."""
        return cls.error(status, "api_error", "Internal server error")

    @classmethod
    def overloaded(cls) -> Behaviour:
        """529 ``overloaded_error``."""
        return cls.error(529, "overloaded_error", "Overloaded")

    @classmethod
    def hang(cls, seconds: float) -> Behaviour:
        """Say nothing for ``seconds`` (longer than the client timeout), then close."""
        return cls("hang", seconds=seconds)

    @classmethod
    def die_mid_stream(cls, text: str, after_chunks: int = 2, how: Death = "close") -> Behaviour:
        """Stream ``after_chunks`` deltas of ``text``, then fail: ``close`` drops the connection,
        ``error_event`` sends an SSE ``overloaded_error`` (as the real API does), ``eof`` ends
        the body cleanly without ``message_stop``. Non-streaming requests: the connection drops."""
        return cls("die", text=text, after_chunks=after_chunks, how=how)


@dataclass
class RecordedRequest:
    """One request as the server saw it; header names are lower-case."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def api_key(self) -> str | None:
        """The key the client sent: ``x-api-key``, or a bearer token (newer SDKs send that)."""
        if "x-api-key" in self.headers:
            return self.headers["x-api-key"]
        scheme, _, token = self.headers.get("authorization", "").partition(" ")
        return token if scheme.lower() == "bearer" and token else None


class FakeClaudeServer:
    """A real HTTP server in a background thread, speaking the Messages API.

    Args:
        ttft: seconds before the first token (streaming) or before the reply (JSON).
        delta_delay: seconds between stream deltas.
        chunk_size: characters per stream delta when a behaviour gives no explicit chunks.
        api_key: when set, other ``x-api-key`` values get 401 ``authentication_error``.
        response_model: model id to report (default: echo the request's model).

    Example:
        >>> with FakeClaudeServer() as server:
        ...     server.url  # 'http://127.0.0.1:54321'
    """

    def __init__(
        self,
        *,
        ttft: float = 0.0,
        delta_delay: float = 0.0,
        chunk_size: int = 12,
        api_key: str | None = None,
        response_model: str | None = None,
    ) -> None:
        self.ttft = ttft
        self.delta_delay = delta_delay
        self.chunk_size = chunk_size
        self.api_key = api_key
        self.response_model = response_model
        self.requests: list[RecordedRequest] = []
        self._queue: deque[Behaviour] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._seen_prefixes: set[str] = set()
        self._counter = 0
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeClaudeServer:
        """Bind a free port and serve in a daemon thread."""
        handler = type("_BoundHandler", (_Handler,), {"fake": self})
        httpd = _Server(("127.0.0.1", 0), handler)
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-claude",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; hanging handlers wake up and close."""
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeClaudeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL to give the SDK (``base_url``); the SDK appends ``/v1/messages``."""
        assert self._httpd is not None, "start the server first"
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- scripting and inspection ------------------------------------------------------------

    def enqueue(self, *behaviours: Behaviour) -> None:
        """Script the next requests, one behaviour each, in order."""
        with self._lock:
            self._queue.extend(behaviours)

    def reset(self) -> None:
        """Forget recorded requests, scripted behaviours and the prompt cache."""
        with self._lock:
            self.requests.clear()
            self._queue.clear()
            self._seen_prefixes.clear()

    @property
    def request_count(self) -> int:
        """Requests received so far (one per attempt)."""
        with self._lock:
            return len(self.requests)

    @property
    def last_request(self) -> RecordedRequest:
        """The most recent request."""
        with self._lock:
            return self.requests[-1]

    # -- used by the handler -----------------------------------------------------------------

    def _record(self, request: RecordedRequest) -> tuple[Behaviour, str]:
        with self._lock:
            self.requests.append(request)
            self._counter += 1
            behaviour = self._queue.popleft() if self._queue else None
            return behaviour or default_behaviour(request.body), f"{self._counter:06d}"

    def _cache_split(self, body: dict[str, Any], prompt_tokens: int) -> tuple[int, int, int]:
        """(uncached input, cache creation, cache read) tokens, mimicking prompt caching."""
        system = body.get("system")
        if not isinstance(system, list):
            return prompt_tokens, 0, 0
        marked = [i for i, b in enumerate(system) if isinstance(b, dict) and b.get("cache_control")]
        if not marked:
            return prompt_tokens, 0, 0
        prefix = json.dumps(system[: marked[-1] + 1], sort_keys=True)
        cached = min(_tokens(prefix), prompt_tokens)
        with self._lock:
            seen = prefix in self._seen_prefixes
            self._seen_prefixes.add(prefix)
        return prompt_tokens - cached, (0 if seen else cached), (cached if seen else 0)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 256  # benchmarks open many connections at once; the default is 5


def default_behaviour(body: dict[str, Any]) -> Behaviour:
    """Answer from the first passage in the request; escalate when there is none."""
    messages = body.get("messages") or [{}]
    content = messages[-1].get("content", "")
    if isinstance(content, list):
        content = "".join(b.get("text", "") for b in content if isinstance(b, dict))
    found = _PASSAGE_RE.search(str(content))
    if found is None:
        text = "I'm sorry, I couldn't find that in our help center."
        return Behaviour.reply(text + meta_block([], True, "no_answer", 0.2))
    passage_id, passage_text = found.group(1), found.group(2).strip()
    first = re.split(r"(?<=[.!?])\s", passage_text, maxsplit=1)[0][:300]
    return Behaviour.reply(f"Here is what our help center says: {first}" + meta_block([passage_id]))


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


def _split(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


class _Handler(BaseHTTPRequestHandler):
    """One connection; HTTP/1.1 keep-alive, SSE sent chunked so a dropped stream is detectable."""

    protocol_version = "HTTP/1.1"
    fake: FakeClaudeServer

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log."""

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            body = {}
        headers = {k.lower(): v for k, v in self.headers.items()}
        behaviour, number = self.fake._record(RecordedRequest("POST", self.path, headers, body))
        self._request_id = f"req_fake_{number}"
        self._message_id = f"msg_fake_{number}"
        try:
            self._respond(behaviour, headers, body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (timeout); nothing left to send

    def _respond(self, behaviour: Behaviour, headers: dict[str, str], body: dict[str, Any]) -> None:
        if self.path.split("?")[0] != "/v1/messages":
            return self._error(404, "not_found_error", f"Not found: {self.path}")
        problem = self._validate(headers, body)
        if problem is not None:
            return self._error(*problem)
        if behaviour.kind == "error":
            return self._error(behaviour.status, behaviour.error_type, behaviour.message,
                               behaviour.retry_after)
        if behaviour.kind == "hang":
            self.fake._stopping.wait(behaviour.seconds)
            self.close_connection = True
            return None
        if behaviour.kind == "die" and not body.get("stream"):
            self._drop()
            return None
        ttft = self.fake.ttft if behaviour.ttft is None else behaviour.ttft
        if body.get("stream"):
            return self._stream(behaviour, body, ttft)
        self.fake._stopping.wait(ttft)
        usage = self._usage(body, behaviour.text)
        return self._send_json(200, self._message(behaviour, body, usage, final=True))

    def _validate(self, headers: dict[str, str], body: dict[str, Any]) -> _Problem | None:
        if "anthropic-version" not in headers:
            return 400, "invalid_request_error", "anthropic-version header is required"
        key = RecordedRequest("POST", self.path, headers).api_key
        if not key or (self.fake.api_key is not None and key != self.fake.api_key):
            return 401, "authentication_error", "invalid x-api-key"
        for name in ("model", "max_tokens", "messages"):
            if name not in body:
                return 400, "invalid_request_error", f"{name}: Field required"
        roles = [m.get("role") for m in body["messages"]]
        if not roles or roles[0] != "user":
            return 400, "invalid_request_error", "messages: first message must use the user role"
        if any(a == b for a, b in itertools.pairwise(roles)):
            return 400, "invalid_request_error", "messages: roles must alternate"
        if any(not m.get("content") for m in body["messages"]):
            return 400, "invalid_request_error", "messages: content must be non-empty"
        return None

    def _usage(self, body: dict[str, Any], output: str) -> dict[str, int]:
        prompt = json.dumps(body.get("system", "")) + json.dumps(body.get("messages", []))
        uncached, created, read = self.fake._cache_split(body, _tokens(prompt))
        return {
            "input_tokens": uncached,
            "output_tokens": _tokens(output),
            "cache_creation_input_tokens": created,
            "cache_read_input_tokens": read,
        }

    def _message(self, behaviour: Behaviour, body: dict[str, Any], usage: dict[str, int],
                 final: bool) -> dict[str, Any]:
        return {
            "id": self._message_id,
            "type": "message",
            "role": "assistant",
            "model": self.fake.response_model or body.get("model", "claude-fake"),
            "content": [{"type": "text", "text": behaviour.text}] if final else [],
            "stop_reason": behaviour.stop_reason if final else None,
            "stop_sequence": None,
            "usage": usage,
        }

    def _stream(self, behaviour: Behaviour, body: dict[str, Any], ttft: float) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.send_header("request-id", self._request_id)
        self.end_headers()
        usage = self._usage(body, behaviour.text)  # once: it updates the fake prompt cache
        start = self._message(behaviour, body, usage | {"output_tokens": 1}, final=False)
        self._event("message_start", {"type": "message_start", "message": start})
        self._event("content_block_start", {"type": "content_block_start", "index": 0,
                                            "content_block": {"type": "text", "text": ""}})
        self._event("ping", {"type": "ping"})
        if self.fake._stopping.wait(ttft):
            return self._drop()
        chunks = list(behaviour.chunks or _split(behaviour.text, self.fake.chunk_size))
        for i, chunk in enumerate(chunks):
            if behaviour.kind == "die" and i == behaviour.after_chunks:
                return self._die(behaviour)
            if i and self.fake._stopping.wait(self.fake.delta_delay):
                return self._drop()
            self._event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                "delta": {"type": "text_delta", "text": chunk}})
        if behaviour.kind == "die":
            return self._die(behaviour)
        self._event("content_block_stop", {"type": "content_block_stop", "index": 0})
        self._event("message_delta", {"type": "message_delta", "usage": usage, "delta": {
            "stop_reason": behaviour.stop_reason, "stop_sequence": None}})
        self._event("message_stop", {"type": "message_stop"})
        self.wfile.write(b"0\r\n\r\n")
        return None

    def _event(self, name: str, data: dict[str, Any]) -> None:
        payload = f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
        self.wfile.write(f"{len(payload):X}\r\n".encode() + payload + b"\r\n")

    def _die(self, behaviour: Behaviour) -> None:
        if behaviour.how == "close":
            return self._drop()
        if behaviour.how == "error_event":
            self._event("error", {"type": "error", "error": {"type": "overloaded_error",
                                                             "message": "Overloaded"}})
        self.wfile.write(b"0\r\n\r\n")
        return None

    def _drop(self) -> None:
        """Close the socket mid-response, as a crashed upstream or proxy would."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _error(self, status: int, error_type: str, message: str,
               retry_after: float | None = None) -> None:
        extra = {} if retry_after is None else {"retry-after": f"{retry_after:g}"}
        body = {"type": "error", "error": {"type": error_type, "message": message},
                "request_id": self._request_id}
        self._send_json(status, body, extra)

    def _send_json(self, status: int, payload: dict[str, Any],
                   extra: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("request-id", self._request_id)
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
