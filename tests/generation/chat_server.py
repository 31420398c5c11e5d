"""A scriptable loopback server speaking OpenAI chat completions (and embeddings), for tests.

Usage::

    with ChatServer() as server:                      # 127.0.0.1, a free port
        server.enqueue(Reply(status=429, headers={"Retry-After": "0.2"}), Reply(status=500))
        backend = OpenAICompatibleBackend(base_url=server.url, model="m")
        ...
        server.requests[-1].body["messages"]          # every request is recorded
        server.max_in_flight                          # peak number of concurrent requests

Each POST to ``.../chat/completions`` takes the next queued ``Reply`` (or, once the queue is
empty, the result of ``handler(request)`` if given, else the default answer). The default
answer's content is ``"reply to: " + <last user message>``, with model echoed and usage
counted in whitespace-separated words.

Each POST to ``.../embeddings`` is recorded and answered the same way (queued ``Reply``, then
``handler``, then the default): by default one vector per input, a hashed bag of its words
(``bag_of_words_vector``), so near-identical texts get near-identical vectors and texts with
no word in common get orthogonal ones (up to hash collisions in ``EMBEDDING_DIMS``).
Other paths get a 404 JSON error.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    """One scripted response.

    ``json``: the body to send as JSON; None means the default answer of the path (chat or
    embeddings, for status 200) or ``{"error": {"message": ...}}`` for other statuses.
    ``text``: a raw body sent instead of JSON (e.g. malformed JSON). ``delay_s``: sleep
    before answering (to trip a client timeout or to overlap requests). ``disconnect``: close
    the connection without answering.
    """

    status: int = 200
    json: Any = None
    text: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    disconnect: bool = False


@dataclass(frozen=True)
class RecordedRequest:
    """What the server received: path, headers (names lower-cased), parsed JSON body or None."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    received_at: float


def default_answer(body: Any) -> dict:
    """The chat-completions answer the server gives when nothing else is scripted."""
    body = body if isinstance(body, dict) else {}
    messages = body.get("messages") or []
    last_user = next(
        (m.get("content", "") for m in reversed(messages) if m.get("role") == "user"), ""
    )
    content = f"reply to: {last_user}"
    prompt_words = sum(len(str(m.get("content", "")).split()) for m in messages)
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_words,
            "completion_tokens": len(content.split()),
            "total_tokens": prompt_words + len(content.split()),
        },
    }


#: Length of the default embedding vectors.
EMBEDDING_DIMS = 256
_WORD_RE = re.compile(r"\w+")


def bag_of_words_vector(text: str, dims: int = EMBEDDING_DIMS) -> list[float]:
    """Word counts hashed into ``dims`` buckets (lower-cased words; a stable hash, so the same
    text gets the same vector in every process). A text without words gets a vector of its
    own (first bucket), never a zero vector."""
    vector = [0.0] * dims
    for word in _WORD_RE.findall(text.lower()):
        digest = hashlib.sha256(word.encode()).digest()
        vector[1 + int.from_bytes(digest[:4], "big") % (dims - 1)] += 1.0
    if not any(vector):
        vector[0] = 1.0
    return vector


def default_embeddings(body: Any) -> dict:
    """The ``/embeddings`` answer the server gives when nothing else is scripted."""
    body = body if isinstance(body, dict) else {}
    inputs = body.get("input")
    inputs = [inputs] if isinstance(inputs, str) else list(inputs or [])
    return {
        "object": "list",
        "model": body.get("model"),
        "data": [
            {"object": "embedding", "index": i, "embedding": bag_of_words_vector(str(text))}
            for i, text in enumerate(inputs)
        ],
        "usage": {
            "prompt_tokens": sum(len(str(t).split()) for t in inputs),
            "total_tokens": sum(len(str(t).split()) for t in inputs),
        },
    }


class ChatServer:
    """Loopback chat-completions server in a background thread; use as a context manager.

    ``delay_s`` delays every answer (on top of a Reply's own delay), so that concurrent
    requests overlap and ``max_in_flight`` shows it. ``handler(request) -> Reply | None``
    decides replies once the queue is empty (None: the default answer).
    """

    def __init__(
        self,
        *,
        delay_s: float = 0.0,
        handler: Callable[[RecordedRequest], Reply | None] | None = None,
    ) -> None:
        self.delay_s = delay_s
        self.handler = handler
        self.requests: list[RecordedRequest] = []
        self.max_in_flight = 0
        self._in_flight = 0
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL to configure a backend with, e.g. ``http://127.0.0.1:PORT/v1``."""
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def enqueue(self, *replies: Reply) -> None:
        """Script the next responses, one per incoming chat request, in order."""
        with self._lock:
            self._queue.extend(replies)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        """Recorded requests that were POSTs to the chat-completions path."""
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    @property
    def embedding_requests(self) -> list[RecordedRequest]:
        """Recorded requests that were POSTs to the embeddings path."""
        return [r for r in self.requests if r.path.endswith("/embeddings")]

    def __enter__(self) -> ChatServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: with Nagle's algorithm the body waited
            # for the client's delayed ACK, 40 ms a request.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output quiet

            def do_GET(self) -> None:
                server._handle(self, "GET")

            def do_POST(self) -> None:
                server._handle(self, "POST")

        class Server(ThreadingHTTPServer):
            # socketserver's default backlog of 5 dropped connections a backend opening 16 at
            # once made, each retried by the kernel a second later.
            request_queue_size = 128

        self._httpd = Server(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        # A short poll interval makes shutdown (which waits for one poll) quick.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._httpd is not None
        self._httpd.shutdown()
        self._httpd.server_close()

    def _handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        recorded = RecordedRequest(
            method=method,
            path=request.path,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            received_at=time.monotonic(),
        )
        with self._lock:
            self.requests.append(recorded)
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            self._respond(request, recorded)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (e.g. its timeout fired); nothing to answer
        finally:
            with self._lock:
                self._in_flight -= 1

    def _next_reply(self, recorded: RecordedRequest) -> Reply:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        if self.handler is not None:
            reply = self.handler(recorded)
            if reply is not None:
                return reply
        return Reply()

    def _respond(self, request: BaseHTTPRequestHandler, recorded: RecordedRequest) -> None:
        embeddings = recorded.path.endswith("/embeddings")
        if recorded.method != "POST" or not (
            embeddings or recorded.path.endswith("/chat/completions")
        ):
            reply = Reply(status=404, json={"error": {"message": f"no route {recorded.path}"}})
        else:
            reply = self._next_reply(recorded)
        time.sleep(self.delay_s + reply.delay_s)
        if reply.disconnect:
            request.close_connection = True
            return
        if reply.text is not None:
            payload, content_type = reply.text.encode(), "text/plain"
        else:
            data = reply.json
            if data is None:
                answer = default_embeddings if embeddings else default_answer
                data = (
                    answer(recorded.body)
                    if reply.status == 200
                    else {"error": {"message": f"scripted status {reply.status}"}}
                )
            payload, content_type = json.dumps(data).encode(), "application/json"
        request.send_response(reply.status)
        request.send_header("Content-Type", content_type)
        request.send_header("Content-Length", str(len(payload)))
        for name, value in reply.headers.items():
            request.send_header(name, value)
        request.end_headers()
        request.wfile.write(payload)
