"""The HTTP face of the sandbox: `POST /inbox/users` as documented, plus its ground truth.

`GET /_sandbox/truth` answers what a perfect sync would hold now; `GET /_sandbox/status` says
whether every record is encoded yet (benchmarks wait for it); `POST /_sandbox/touch` with
`{"contacts": N}` makes N random contacts active now (a benchmark's busy day), `/_sandbox/change`
has agents change N (updatedAt moves, lastSeenAt does not), `/_sandbox/delete` deletes N of any
age, `/_sandbox/move_created` with `by_ms` moves their createdAt (a data fix); each also takes
`{"ids": [...]}`, or `{"created_on": "YYYY-MM-DD", "share": s}` (a mass deletion of part of a
day). `POST /_sandbox/outage` with `{"requests": N}` or `{"seconds": S}` answers success with no
records for that long. `POST /_sandbox/day` with `{"touch": N, "change": N, "create": N,
"delete": N}` simulates the next day after the anchor (ContactStore.advance_day) and answers
the new `now`.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from types import TracebackType
from typing import Any

import orjson

from etl_contacts.sandbox.config import SandboxConfig
from etl_contacts.sandbox.faults import FaultPlan
from etl_contacts.sandbox.filters import BadRequestError, Query, parse_body
from etl_contacts.sandbox.index import UNBOUNDED
from etl_contacts.sandbox.store import ContactStore
from etl_contacts.sandbox.wire import Connection, Request, Server
from etl_contacts.timestamps import format_ms

EMPTY_ANSWER = b'{"success":true,"message":"","data":[],"code":200}'
UNSUCCESSFUL_ANSWER = (
    b'{"success":false,"message":"MongoServerError: operation exceeded time limit",'
    b'"data":[],"code":500}'
)
WRONG_TOKEN = (
    "Argument passed in must be a single String of 12 bytes or a string of 24 hex characters"
)
HTML_PAGE = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"

logger = logging.getLogger(__name__)


def _error(status: int, message: str) -> bytes:
    return orjson.dumps({"success": False, "message": message, "code": status})


class SandboxServer:
    """A sandbox on its own threads; use it as a context manager, or `serve_forever`."""

    def __init__(
        self,
        config: SandboxConfig,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: ssl.SSLContext | None = None,
        ready_first: bool = False,
    ) -> None:
        """`ready_first`: encode every contact before listening, so the first client is served
        at full speed (at 1,000,000 contacts that takes half a minute; until then, a page is a
        fraction of a second instead of a fraction of a millisecond)."""
        self.config = config
        self._store = ContactStore(config)
        if ready_first:
            self._store.wait_ready()
        self._faults = FaultPlan(config, self._store.server_time)
        self._counted_actions = {  # path: (what its answer says was done, the action)
            "/_sandbox/touch": ("touched", "touch"),
            "/_sandbox/change": ("changed", "change"),
            "/_sandbox/delete": ("deleted", "delete"),
            "/_sandbox/move_created": ("moved", "move_created"),
        }
        self._counts = {"requests": 0, "refused": 0, "empty_answers": 0}
        self._outage_requests = 0  # answers still to come empty ("success" without records)
        self._outage_until = 0.0  # and until when (monotonic seconds)
        self._outage_last_seen_only = False  # only queries with a lastSeenAt range
        self._count_lock = threading.Lock()
        self._server = Server((host, port), self._respond, self._store.server_time)
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self._scheme = "https" if tls else "http"
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{self._scheme}://{host}:{port}"

    def serve_forever(self) -> None:
        self._server.serve_forever(poll_interval=0.2)

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
        if self._thread is not None:
            self._server.shutdown()
        self._server.server_close()
        self._server.close_connections()
        self._store.close()

    def truth(self) -> dict[str, Any]:
        """Every live contact as it stands now, deletions, malformed records, counts: a JSON
        document, each value as JSON has it."""
        return orjson.loads(self.truth_json())

    def truth_json(self) -> bytes:
        """The truth as JSON; contacts are spliced in as the very bytes the API serves."""
        snapshot = self._store.snapshot()
        with self._count_lock:
            counts = dict(self._counts)
        rest = orjson.dumps(
            {
                "deleted": snapshot.deleted,
                **self._faults.report(),
                **counts,
                "now": format_ms(snapshot.now_ms),
                "config": self._settings(),
            }
        )
        return b'{"contacts":[' + b",".join(snapshot.contacts) + b"]," + rest[1:]

    def _settings(self) -> dict[str, object]:
        config = self.config
        return {
            "contacts": config.contacts,
            "days": config.days,
            "seed": config.seed,
            "anchor": self._store.anchor.isoformat(),
            "page_size": config.page_size,
            "page_size_later": config.page_size_later,
            "page_size_after": config.page_size_after,
            "page_size_two_ranges": config.page_size_two_ranges,
            "two_ranges": config.two_ranges,
            "sort": config.sort,
            "ends_at_inclusive": config.ends_at_inclusive,
            "starts_at_exclusive": config.starts_at_exclusive,
            "bound_precision_ms": config.bound_precision_ms,
            "reverse_sort": config.reverse_sort,
            "ids_minted_at_import": config.ids_minted_at_import,
            "never_active_share": config.never_active_share,
            "nulls_first": config.nulls_first,
            "clock_offset_ms": config.clock_offset_ms,
            "activity_rate": config.activity_rate,
            "agent_change_rate": config.agent_change_rate,
            "create_rate": config.create_rate,
            "delete_rate": config.delete_rate,
            "faults": config.faults,
        }

    def _count(self, name: str) -> None:
        with self._count_lock:
            self._counts[name] += 1

    def _respond(self, request: Request, connection: Connection) -> bool:
        route = (request.method, request.path)
        if route == ("POST", "/inbox/users"):
            return self._inbox(request, connection)
        if route == ("GET", "/_sandbox/truth"):
            connection.send(200, self.truth_json())
        elif route == ("GET", "/_sandbox/status"):
            connection.send(200, orjson.dumps(self._store.status()))
        elif request.method == "POST" and request.path in self._counted_actions:
            self._counted(request, connection)
        elif route == ("POST", "/_sandbox/outage"):
            self._outage(request, connection)
        elif route == ("POST", "/_sandbox/day"):
            try:
                now = self._store.advance_day(orjson.loads(request.body))
            except ValueError as exc:  # orjson.JSONDecodeError is one too
                connection.send(422, _error(422, str(exc)))
                return True
            connection.send(200, orjson.dumps({"now": format_ms(now)}))
        else:
            connection.send(404, _error(404, f"Cannot {request.method} {request.path}"))
        return True

    def _counted(self, request: Request, connection: Connection) -> None:
        """touch, change, delete or move_created the contacts the body names, now (see
        ContactStore.act_on); answers how many there were."""
        done, action = self._counted_actions[request.path]
        try:
            spec = orjson.loads(request.body)
            if not isinstance(spec, dict):
                raise ValueError('send an object: {"contacts": N}')
            count = self._store.act_on(action, spec)
        except ValueError as exc:  # orjson.JSONDecodeError is one too
            connection.send(422, _error(422, str(exc)))
            return
        connection.send(200, orjson.dumps({done: count}))

    def _outage(self, request: Request, connection: Connection) -> None:
        """`{"requests": N}` or `{"seconds": S}`: the next N answers, or every answer for S
        seconds, say success with no records (a lagging replica, an index rebuild); with
        `"only": "lastSeenAt"`, only answers to queries with a lastSeenAt range (that index
        lagging), counted among those."""
        try:
            spec = orjson.loads(request.body)
            requests = int(spec.get("requests", 0))
            seconds = float(spec.get("seconds", 0))
            only = spec.get("only")
            if only not in (None, "lastSeenAt"):
                raise ValueError(only)
        except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
            connection.send(
                422, _error(422, 'send {"requests": N} or {"seconds": S}, "only": "lastSeenAt"')
            )
            return
        with self._count_lock:
            self._outage_requests = max(0, requests)
            self._outage_until = time.monotonic() + max(0.0, seconds)
            self._outage_last_seen_only = only is not None
        connection.send(200, orjson.dumps({"requests": requests, "seconds": seconds}))

    def _in_outage(self, query: Query) -> bool:
        with self._count_lock:
            if self._outage_last_seen_only and query.last_seen == UNBOUNDED:
                return False
            if self._outage_requests > 0:
                self._outage_requests -= 1
            elif time.monotonic() >= self._outage_until:
                return False
            self._counts["empty_answers"] += 1
            return True

    def _inbox(self, request: Request, connection: Connection) -> bool:
        """The documented endpoint: auth, filters, then whatever fault this request draws."""
        delay = self._faults.delay_seconds()
        if delay:
            time.sleep(delay)
        if not self._authorized(request, connection):
            return True
        self._count("requests")
        try:
            query, page = parse_body(orjson.loads(request.body))
        except (orjson.JSONDecodeError, BadRequestError) as exc:
            connection.send(422, _error(422, str(exc)))
            return True
        self._store.act()
        if self._in_outage(query):
            connection.send(200, EMPTY_ANSWER)
            return True
        fault = self._faults.draw()
        if fault in ("429", "500", "502", "503", "504", "reset", "empty", "unsuccessful"):
            return self._fail(fault, connection)
        if fault == "slow":
            self._faults.injected(fault)
            time.sleep(self.config.slow_seconds)
        with self._count_lock:
            ranges = (query.created != UNBOUNDED) + (query.last_seen != UNBOUNDED)
            size = self.config.page_size_at(self._counts["requests"], ranges=ranges)
        result = self._store.page(query, page, size=size, duplicate=fault == "duplicate")
        data = result.records
        if fault == "duplicate" and result.duplicate is not None:
            self._faults.injected(fault)
            data = [result.duplicate, *data]
        if fault == "hide" and data:
            data = self._faults.hide(data)
        if fault == "malformed" and data:
            broken = self._faults.malformed_record(orjson.loads(data[0]))
            data = [*data[: len(data) // 2], orjson.dumps(broken), *data[len(data) // 2 :]]
        body = b'{"success":true,"message":"","data":[%s],"code":200}' % b",".join(data)
        if fault == "truncated":
            self._faults.injected(fault)
            connection.send(200, body, truncate=True)
            return False
        if fault == "html":
            self._faults.injected(fault)
            connection.send(200, HTML_PAGE, "text/html")
        else:
            connection.send(200, body)
        return True

    def _authorized(self, request: Request, connection: Connection) -> bool:
        """Whether the request carries the token; if not, the refusal is sent."""
        if request.headers.get("authtype") != "Key":
            self._count("refused")
            connection.send(401, _error(401, "Unauthorized: the authtype: Key header is missing"))
            return False
        if request.headers.get("authorization") != f"Bearer {self.config.token}":
            self._count("refused")
            connection.send(400, _error(400, WRONG_TOKEN))
            return False
        return True

    def _fail(self, fault: str, connection: Connection) -> bool:
        """A fault instead of data; returns whether the connection lives on."""
        self._faults.injected(fault)
        if fault == "reset":
            connection.reset()
            return False
        if fault == "empty":
            self._count("empty_answers")
            connection.send(200, EMPTY_ANSWER)
            return True
        if fault == "unsuccessful":
            connection.send(200, UNSUCCESSFUL_ANSWER)
            return True
        if fault == "429":
            headers = {"Retry-After": self._faults.retry_after()}
            connection.send(
                429, _error(429, "Too many requests, please try again later."), headers=headers
            )
        else:
            status = int(fault)
            connection.send(status, _error(status, "Internal server error"))
        return True
