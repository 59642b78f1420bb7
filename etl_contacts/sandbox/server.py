"""The HTTP face of the sandbox: `POST /inbox/users` as documented, `GET /_sandbox/truth`.

Python's own HTTP server, because faults need the socket: a reset is a close with SO_LINGER 0,
a truncated body is a Content-Length the body never reaches.
"""

from __future__ import annotations

import logging
import socket
import ssl
import struct
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

import orjson

from etl_contacts.sandbox.config import SandboxConfig
from etl_contacts.sandbox.faults import FaultPlan
from etl_contacts.sandbox.filters import BadRequestError, parse_query
from etl_contacts.sandbox.store import ContactStore

WRONG_TOKEN = (
    "Argument passed in must be a single String of 12 bytes or a string of 24 hex characters"
)
RETRY_AFTER_DATE = "Wed, 21 Oct 2015 07:28:00 GMT"

logger = logging.getLogger(__name__)


class SandboxServer:
    """A sandbox on 127.0.0.1, served from a background thread; use it as a context manager."""

    def __init__(
        self,
        config: SandboxConfig,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.config = config
        self.store = ContactStore(config)
        self.faults = FaultPlan(config)
        self.requests = 0
        self._count_lock = threading.Lock()
        self._httpd = _QuietServer((host, port), _handler_for(self))
        self._httpd.daemon_threads = True
        if tls is not None:
            self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True)
        self._scheme = "https" if tls else "http"
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"{self._scheme}://{host}:{port}"

    def serve_forever(self) -> None:
        self._httpd.serve_forever(poll_interval=0.2)

    def __enter__(self) -> SandboxServer:
        self._thread = threading.Thread(target=self.serve_forever, daemon=True, name="sandbox")
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def count_request(self) -> None:
        with self._count_lock:
            self.requests += 1

    def truth(self) -> dict[str, object]:
        """Every live contact as it stands now, deletions, malformed records, fault counts."""
        truth = self.store.truth()
        truth["malformed"] = list(self.faults.malformed)
        truth["faults"] = dict(self.faults.counts)
        truth["requests"] = self.requests
        return truth


class _QuietServer(ThreadingHTTPServer):
    """A client that hangs up mid-request (a killed sync, a timeout) is routine, not an error."""

    def handle_error(self, request: object, client_address: object) -> None:
        logger.debug("sandbox: client %s went away", client_address, exc_info=True)


def _handler_for(sandbox: SandboxServer) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        pass

    Handler.sandbox = sandbox
    return Handler


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms stall
    sandbox: SandboxServer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib signature)
        logger.debug("sandbox: " + format, *args)

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if path == "/_sandbox/truth":
            self._json(200, self.sandbox.truth())
        elif path == "/_sandbox/status":
            store = self.sandbox.store
            self._json(200, {"contacts": store.size, "rendered": store.rendered})
        else:
            self._json(404, {"success": False, "message": "Not found", "code": 404})

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.split("?")[0] != "/inbox/users":
            self._json(404, {"success": False, "message": "Not found", "code": 404})
            return
        sandbox, config = self.sandbox, self.sandbox.config
        if config.latency_ms or config.jitter_ms:
            time.sleep((config.latency_ms + sandbox.faults.jitter(config.jitter_ms)) / 1000)
        if self.headers.get("authtype") != "Key":
            self._json(401, {"success": False, "message": "Unauthorized", "code": 401})
            return
        if self.headers.get("Authorization") != f"Bearer {config.token}":
            self._json(400, {"success": False, "message": WRONG_TOKEN, "code": 400})
            return
        try:
            query, page = parse_query(orjson.loads(raw))
        except (orjson.JSONDecodeError, BadRequestError) as exc:
            self._json(422, {"success": False, "message": str(exc), "code": 422})
            return
        sandbox.count_request()
        sandbox.store.act()
        fault = sandbox.faults.draw()
        if self._transport_fault(fault):
            return
        result = sandbox.store.page(query, page)
        data = list(result.records)
        if fault == "malformed" and data:
            broken = sandbox.faults.malformed_record(orjson.loads(data[0]))
            data.insert(len(data) // 2, orjson.dumps(broken))
        if fault == "duplicate" and result.previous is not None:
            data.insert(0, result.previous)
        body = b'{"success":true,"message":"","data":[%s],"code":200}' % b",".join(data)
        if fault == "truncated":
            self._send(200, body, "application/json", truncate=True)
        elif fault == "html":
            self._send(200, b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html")
        else:
            self._send(200, body, "application/json")

    def _transport_fault(self, fault: str | None) -> bool:
        """Answer with a fault instead of data; True when the request is done."""
        if fault == "429":
            retry_after = (
                RETRY_AFTER_DATE
                if self.sandbox.faults.jitter(1.0) < 0.3
                else str(self.sandbox.config.retry_after_seconds)
            )
            body = orjson.dumps({"success": False, "message": "Too many requests", "code": 429})
            self._send(429, body, "application/json", headers={"Retry-After": retry_after})
            return True
        if fault in ("500", "502", "503", "504"):
            status = int(fault)
            self._json(status, {"success": False, "message": "Server error", "code": status})
            return True
        if fault == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            return True
        if fault == "slow":
            time.sleep(self.sandbox.config.slow_seconds)
        return False

    def _json(self, status: int, payload: object) -> None:
        self._send(status, orjson.dumps(payload), "application/json")

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        *,
        truncate: bool = False,
        headers: dict[str, str] | None = None,
    ) -> None:
        # one write for status line, headers and body: half the syscalls of send_header()
        lines = [
            f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
            f"Content-Type: {content_type}",
            f"Content-Length: {len(body)}",
            *(f"{name}: {value}" for name, value in (headers or {}).items()),
        ]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if truncate:
            self.wfile.write(head + body[: len(body) // 2])
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(head + body)
