"""A small threaded HTTP server for fake providers, with fault injection.

Each fake provider subclasses ``FakeProvider`` and registers routes. Tests
script faults per route name (``server.faults.push("submit", Fault(...))``),
read the ledger of accepted submissions, and fetch the files it serves.
Binds to 127.0.0.1 only.
"""
import json
import random
import re
import socket
import struct
import sys
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit


@dataclass
class Fault:
    """One scripted misbehaviour for the next request on a route.

    kind: "status" answers ``status`` with ``body``/``headers``;
    "hang" records the request (for submits) and never answers;
    "reset" records it and drops the connection; "delay" sleeps
    ``seconds`` and then answers normally.
    """

    kind: str
    status: int = 500
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    client: str = ""  # the caller's address

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Response:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


class Faults:
    """Per-route queues of scripted faults, plus a latency range."""

    def __init__(self) -> None:
        self._queues: dict[str, deque[Fault]] = defaultdict(deque)
        self.latency: tuple[float, float] = (0.0, 0.0)
        self._lock = threading.Lock()

    def push(self, route: str, *faults: Fault) -> None:
        with self._lock:
            self._queues[route].extend(faults)

    def pop(self, route: str) -> Fault | None:
        with self._lock:
            queue = self._queues.get(route)
            return queue.popleft() if queue else None

    def clear(self) -> None:
        with self._lock:
            self._queues.clear()


Handler = Callable[[Request, re.Match], Response]


class FakeProvider:
    """Routes, faults, a ledger and served files on a free 127.0.0.1 port."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern, str, Handler]] = []
        self.faults = Faults()
        self.ledger: list[dict[str, Any]] = []
        self.requests: list[Request] = []
        self.files: dict[str, tuple[bytes, str]] = {}
        self.lock = threading.Lock()
        # Loopback only, unless a test of several hosts names the address
        # they reach this machine at.
        self.host = "127.0.0.1"
        self._server: ThreadingHTTPServer | None = None
        self._stopping = threading.Event()
        self.route("GET", r"/files/(?P<name>[^/]+)", "file", self._serve_file)

    # ------------------------------------------------------------ wiring
    def route(self, method: str, pattern: str, name: str, handler: Handler) -> None:
        self.routes.append((method, re.compile(pattern + r"/?$"), name, handler))

    @property
    def url(self) -> str:
        assert self._server is not None, "server not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FakeProvider":
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _any(self) -> None:
                fake._dispatch(self)

            do_GET = do_POST = do_PUT = do_DELETE = _any

        self._server = _Server((self.host, 0), _Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # ------------------------------------------------------------ files
    def serve_file(self, name: str, data: bytes, content_type: str) -> str:
        """Serve ``data`` at /files/<name> and return its URL."""
        self.files[name] = (data, content_type)
        return f"{self.url}/files/{name}"

    def _serve_file(self, request: Request, match: re.Match) -> Response:
        found = self.files.get(match["name"])
        if found is None:
            return Response(404, {"detail": "Not Found"})
        data, content_type = found
        return Response(200, data, content_type=content_type)

    def record_submission(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.ledger.append(entry)

    # ------------------------------------------------------------ dispatch
    def _dispatch(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        request = Request(
            handler.command, parts.path, parse_qs(parts.query),
            {k.lower(): v for k, v in handler.headers.items()}, body,
            handler.client_address[0],
        )
        with self.lock:
            self.requests.append(request)
        low, high = self.faults.latency
        if high > 0:
            time.sleep(random.uniform(low, high))
        for method, pattern, name, route_handler in self.routes:
            match = pattern.match(parts.path)
            if match and method == handler.command:
                self._answer(handler, request, match, name, route_handler)
                return
        self._write(handler, Response(404, {"detail": f"no route {parts.path}"}))

    def _answer(self, handler, request, match, name, route_handler) -> None:
        fault = self.faults.pop(name)
        if fault is None or fault.kind == "delay":
            if fault is not None:
                time.sleep(fault.seconds)
            self._write(handler, route_handler(request, match))
        elif fault.kind == "status":
            self._write(handler, Response(fault.status, fault.body, fault.headers))
        elif fault.kind in ("hang", "reset"):
            route_handler(request, match)  # the provider accepted the work
            if fault.kind == "hang":
                self._stopping.wait(fault.seconds or 3600)
            _reset(handler.connection)
            handler.close_connection = True
        else:
            raise ValueError(f"unknown fault kind {fault.kind!r}")

    @staticmethod
    def _write(handler: BaseHTTPRequestHandler, response: Response) -> None:
        if isinstance(response.body, bytes):
            payload = response.body
        elif response.body is None:
            payload = b""
        elif isinstance(response.body, str):
            payload = response.body.encode()
        else:
            payload = json.dumps(response.body).encode()
        handler.send_response(response.status)
        handler.send_header("Content-Type", response.content_type)
        handler.send_header("Content-Length", str(len(payload)))
        for key, value in response.headers.items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(payload)


class ScriptedFake(FakeProvider):
    """A fake whose requests run for ``run_seconds`` and end as scripted.

    ``outcomes`` holds how the next requests end, oldest first; a request
    made with none scripted ends as ``outcome_type()`` says. Subclasses
    keep their requests under ``state_lock`` and move one a step on in
    ``_advance``.
    """

    outcome_type: type = object

    def __init__(self, run_seconds: float = 0.0) -> None:
        super().__init__()
        self.run_seconds = run_seconds
        self.outcomes: deque[Any] = deque()
        self.state_lock = threading.RLock()

    def next_outcome(self) -> Any:
        return self.outcomes.popleft() if self.outcomes else self.outcome_type()

    def forget(self, *stores: dict) -> None:
        """Clear ``stores`` and every file, submission, request, outcome and
        fault, for the next test."""
        with self.state_lock, self.lock:
            for store in (*stores, self.files):
                store.clear()
            self.ledger.clear()
            self.requests.clear()
            self.outcomes.clear()
            self.faults.clear()

    def _hold(self, request_id: str, wait: float) -> None:
        """Answer a request that asked to wait: after the run, or at the
        deadline."""
        self._stopping.wait(min(wait, self.run_seconds))
        if self.run_seconds <= wait:
            self._advance(request_id, force=True)
            self._advance(request_id, force=True)

    def _advance(self, request_id: str, force: bool = False) -> None:
        raise NotImplementedError


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (a killed worker, a timed-out call) is
        normal here; anything else is printed as usual."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def _reset(connection: socket.socket) -> None:
    """Close with RST instead of FIN, as a crashed proxy would."""
    try:
        connection.setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
        )
        connection.close()
    except OSError:
        pass


def follow_states(backend: Any, spec: Any, request_id: str, polls: int = 10) -> list[Any]:
    """Poll an adapter until the request is final; every state seen, in order."""
    seen = []
    for _ in range(polls):
        status = backend.status(spec, request_id)
        seen.append(status.state)
        if status.is_final:
            return seen
    raise AssertionError(f"request {request_id} never finished: {seen}")
