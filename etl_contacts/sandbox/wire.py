"""Just enough HTTP/1.1 for the sandbox, on sockets it fully controls.

The standard library's http.server parses headers through the email package, which costs more
than the whole rest of a request here; and faults need the raw socket anyway: a reset is a close
with SO_LINGER 0, a truncated body is a Content-Length the body never reaches.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import socketserver
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from functools import lru_cache
from http import HTTPStatus

MAX_LINE = 65_536
MAX_HEADERS = 100
MAX_BODY = 1 << 20

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes
    keep_alive: bool


class ProtocolError(Exception):
    """The client did not speak HTTP/1.1 as the sandbox understands it."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


Clock = Callable[[], float]  # seconds since the epoch, by the server's clock


class Connection:
    """One client connection: read requests, write responses, or break it on purpose."""

    def __init__(self, sock: socket.socket, clock: Clock = time.time) -> None:
        self._sock = sock
        self._clock = clock
        self._reader = sock.makefile("rb", buffering=65_536)
        self.closing = False  # the response says Connection: close

    def read_request(self) -> Request | None:
        """The next request, or None when the client closed the connection."""
        line = self._reader.readline(MAX_LINE)
        while line in (b"\r\n", b"\n"):
            line = self._reader.readline(MAX_LINE)
        if not line:
            return None
        parts = line.decode("latin-1").split()
        if len(parts) != 3 or parts[2] not in ("HTTP/1.1", "HTTP/1.0"):
            raise ProtocolError(400, "malformed request line")
        method, target, version = parts
        headers = self._headers()
        if "transfer-encoding" in headers:
            raise ProtocolError(411, "send the body with a Content-Length")
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError:
            raise ProtocolError(400, "Content-Length is not a number") from None
        if not 0 <= length <= MAX_BODY:
            raise ProtocolError(413, f"bodies are limited to {MAX_BODY} bytes")
        body = self._reader.read(length) if length else b""
        if len(body) < length:
            return None
        connection = headers.get("connection", "").lower()
        keep_alive = connection == "keep-alive" or (version == "HTTP/1.1" and connection != "close")
        self.closing = not keep_alive
        return Request(method, target.partition("?")[0], headers, body, keep_alive)

    def _headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        for _ in range(MAX_HEADERS):
            line = self._reader.readline(MAX_LINE)
            if line in (b"\r\n", b"\n", b""):
                return headers
            name, colon, value = line.decode("latin-1").partition(":")
            if not colon:
                raise ProtocolError(400, "malformed header line")
            headers[name.strip().lower()] = value.strip()
        raise ProtocolError(431, f"more than {MAX_HEADERS} headers")

    def send(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json; charset=utf-8",
        headers: dict[str, str] | None = None,
        *,
        truncate: bool = False,
    ) -> None:
        """One response in one write. `truncate`: send half the body, then close."""
        lines = [
            f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
            f"Content-Type: {content_type}",
            f"Content-Length: {len(body)}",
            f"Date: {_http_date(int(self._clock()))}",
            *(f"{name}: {value}" for name, value in (headers or {}).items()),
            *(["Connection: close"] if self.closing else []),
        ]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if truncate:
            self._sock.sendall(head + body[: len(body) // 2])
            self._sock.shutdown(socket.SHUT_RDWR)
        else:
            self._sock.sendall(head + body)

    def reset(self) -> None:
        """Close at once with a TCP RST: the client sees a connection reset, not a response."""
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self._reader.close()  # the socket closes only once its file objects are closed too
        self._sock.close()


@lru_cache(maxsize=2)
def _http_date(second: int) -> str:
    """The Date header of that second: computed once, as it serves every response in it."""
    return formatdate(second, usegmt=True)


# Answers one request; returns whether the connection can take another.
Responder = Callable[[Request, Connection], bool]


class Server(socketserver.ThreadingTCPServer):
    """A thread per connection, keep-alive, and every open connection closed on shutdown."""

    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    server_address: tuple[str, int]  # what getsockname gives for an AF_INET socket

    def __init__(
        self, address: tuple[str, int], respond: Responder, clock: Clock = time.time
    ) -> None:
        super().__init__(address, _Handler)
        self.respond = respond
        self.clock = clock
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def handle_error(self, _request: object, client_address: object) -> None:
        logger.exception("sandbox: failed to answer %s", client_address)

    def close_connections(self) -> None:
        with self._open_lock:
            for sock in self._open:
                with contextlib.suppress(OSError):  # already gone
                    sock.shutdown(socket.SHUT_RDWR)
            self._open.clear()

    def track(self, sock: socket.socket, is_open: bool) -> None:
        with self._open_lock:
            if is_open:
                self._open.add(sock)
            else:
                self._open.discard(sock)


class _Handler(socketserver.BaseRequestHandler):
    server: Server

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(sock, is_open=True)
        connection = Connection(sock, self.server.clock)
        try:
            while True:
                try:
                    request = connection.read_request()
                except ProtocolError as exc:
                    connection.closing = True
                    connection.send(exc.status, str(exc).encode(), "text/plain")
                    return
                if request is None or not self.server.respond(request, connection):
                    return
                if not request.keep_alive:
                    return
        except OSError:
            return  # the client went away mid-request: routine for a killed or timed-out client
        finally:
            self.server.track(sock, is_open=False)
