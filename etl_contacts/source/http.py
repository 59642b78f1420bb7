"""One request to `POST /inbox/users`, with the retry policy and the rate limit.

Whether a response is retriable or fatal is decided in `classify` and nowhere else. The token
is set once on each thread's pooled session; requests' exceptions are never re-raised or chained
as they are (they carry the prepared request and its headers), only their kind.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections.abc import MutableMapping
from email.utils import parsedate_to_datetime

import orjson
import requests
import tenacity
from requests.adapters import HTTPAdapter

from etl_contacts.source.errors import AuthError, SourceError, TransientError
from etl_contacts.source.models import CREATED_AT, LAST_SEEN_AT, ClientConfig, Reply
from etl_contacts.source.stats import ExtractStats

ENDPOINT = "/inbox/users"
NEUTRAL_BODY: dict[str, object] = {
    "searchText": "",
    "tags": [],
    "status": [],
    "isOnline": False,
    "_botWebsite": [],
    "_botWhatsapp": [],
    "_botFacebook": [],
    "_botTelegram": [],
    "_agentAssigned": [],
    "segments": [],
    "applicableFilters": [],
    LAST_SEEN_AT: {"startAt": "", "endsAt": ""},
    CREATED_AT: {"startAt": "", "endsAt": ""},
    "userInteracted": False,
    "lastMessageBy": [],
    "isLiveChatActive": False,
    "hasOrdered": {"status": False, "lastAt": ""},
}

logger = logging.getLogger(__name__)


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """`Retry-After` as seconds from now: either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    moment = http_date(value)
    return None if moment is None else max(0.0, moment - (time.time() if now is None else now))


def http_date(value: str | None) -> float | None:
    """An HTTP date (`Date`, `Retry-After`) as epoch seconds; None when absent or unreadable."""
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None


def classify(
    status: int, content_type: str, body: bytes, retry_after: str | None, *, secret: str
) -> list[object]:
    """The records of a response, or the error it stands for (TransientError = retry).

    `secret`: the token, masked wherever the server's own message is quoted (a server may
    repeat a rejected value back: "Cast to ObjectId failed for value ...")."""
    if status == 401:
        raise AuthError(
            "Express-Chat answered 401 Unauthorized: the request lacks the `authtype: Key` "
            "header or the token is not an API key; check EXPRESS_CHAT_API_TOKEN"
        )
    if status == 400:
        raise AuthError(
            "Express-Chat rejected the token (HTTP 400: "
            f"{_server_message(body, secret)}); set EXPRESS_CHAT_API_TOKEN to a valid API token"
        )
    if status == 429:
        raise TransientError("429", "rate limited", retry_after_seconds(retry_after))
    if status >= 500:
        raise TransientError(
            f"{status}", f"server error {status}", retry_after_seconds(retry_after)
        )
    if status != 200:
        raise SourceError(f"Express-Chat answered HTTP {status}: {_server_message(body, secret)}")
    if "json" not in content_type.lower():
        raise TransientError("not_json", f"a 200 response with content type {content_type!r}")
    envelope = _envelope(body)
    if isinstance(envelope, dict) and envelope.get("success") is False:
        raise TransientError(
            "unsuccessful",
            f"a 200 response saying success: false ({_server_message(body, secret)})",
        )
    data = envelope.get("data") if isinstance(envelope, dict) else None
    if not isinstance(data, list):
        raise TransientError("bad_envelope", "a response without a `data` list")
    return data


def _envelope(body: bytes) -> object:
    """The parsed body. A string cut in the middle of a character pair (JavaScript's
    JSON.stringify writes a lone UTF-16 surrogate, as `\\ud83d`, when a message preview is cut
    inside an emoji) is valid JSON that orjson refuses, and no PostgreSQL text can hold: such a
    body is read by the standard library instead, each lone surrogate replaced by U+FFFD, so
    one broken preview does not make the page unreadable for every run."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        reason = exc.msg
    try:
        envelope = json.loads(body)
    except ValueError:
        raise TransientError("bad_json", f"an unparseable body ({reason})") from None
    logger.warning(
        "an answer orjson refused (%s) was read by the standard library: a character cut in "
        "half, if any, is U+FFFD",
        reason,
    )
    return _mended(envelope)


def _mended(value: object) -> object:
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, list):
        return [_mended(item) for item in value]
    if isinstance(value, dict):
        return {_mended(key): _mended(item) for key, item in value.items()}
    return value


def _server_message(body: bytes, secret: str) -> str:
    try:
        message = orjson.loads(body).get("message")
    except (orjson.JSONDecodeError, AttributeError):
        message = None
    if not message:
        return "no message"
    text = str(message)
    return (text.replace(secret, "<the token>") if secret else text)[:200]


class RateLimiter:
    """Spaces requests evenly across threads: at most `per_second` start each second."""

    def __init__(self, per_second: float | None) -> None:
        self._interval = 1.0 / per_second if per_second else 0.0
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self._interval:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(self._next, now)
            self._next = slot + self._interval
        if slot > now:
            time.sleep(slot - now)


class _BearerKey(requests.auth.AuthBase):
    """The token as requests' auth, so no other auth (a ~/.netrc entry) can replace it."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        request.headers["authtype"] = "Key"
        return request


class ApiClient:
    """Thread-safe: one pooled session per thread, one rate limit and one set of counters."""

    def __init__(
        self,
        config: ClientConfig,
        stats: ExtractStats,
    ) -> None:
        self._config = config
        self._stats = stats
        self._url = config.base_url.rstrip("/") + ENDPOINT
        self._local = threading.local()
        self._limiter = RateLimiter(config.requests_per_second)
        self._sessions: list[requests.Session] = []
        self._sessions_lock = threading.Lock()
        # tenacity keeps each call's state per thread: one policy serves every worker
        self._retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(TransientError),
            stop=(
                tenacity.stop_after_attempt(config.max_attempts)
                | tenacity.stop_after_delay(config.retry_budget_seconds)
            ),
            wait=self._wait,
            before_sleep=self._count_retry,
            reraise=True,
        )
        # What requests would read from the environment on every request (proxies, and a CA
        # bundle when none is configured), read once: 30 % of a request's CPU time went there.
        environment = requests.Session().merge_environment_settings(
            self._url, {}, None, config.ca_bundle or True, None
        )
        self._proxies: MutableMapping[str, str] = environment["proxies"]
        self._verify: bool | str | None = environment["verify"]

    def fetch(self, filters: dict[str, object], page: int) -> Reply:
        """One page and the server's clock, retried as the policy says; raises AuthError at
        once."""
        return self._retrying(self._post, self._payload(filters, page))

    def fetch_listed(self, filters: dict[str, object], page: int) -> Reply:
        """A page known to list records, retried while it lists none, as a transient failure:
        the server says success with no records for a while (a lagging replica, an index
        rebuild). When the retries run out, the window fails: an outage is never taken for an
        absence."""
        return self._retrying(self._post_listed, self._payload(filters, page))

    def _payload(self, filters: dict[str, object], page: int) -> bytes:
        return orjson.dumps({**NEUTRAL_BODY, **self._config.extra_filters, **filters, "page": page})

    def _post_listed(self, payload: bytes) -> Reply:
        reply = self._post(payload)
        if not reply.items:
            raise TransientError("empty", "a listing that held records answered with none")
        return reply

    def _wait(self, state: tenacity.RetryCallState) -> float:
        """Retry-After when the server gave one, else exponential backoff with full jitter."""
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, TransientError) and error.retry_after is not None:
            return min(error.retry_after, self._config.backoff_max)
        backoff = tenacity.wait_random_exponential(
            multiplier=self._config.backoff_initial, max=self._config.backoff_max
        )
        return backoff(state)

    def _count_retry(self, state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        cause = error.cause if isinstance(error, TransientError) else "other"
        self._stats.add(f"retry_{cause}")
        logger.info(
            "retrying a request to Express-Chat after %s (attempt %d)", cause, state.attempt_number
        )

    def _post(self, payload: bytes) -> Reply:
        self._limiter.wait()
        self._stats.add("requests")
        timeout = (self._config.connect_timeout, self._config.read_timeout)
        try:
            response = self._session().post(self._url, data=payload, timeout=timeout)
            content = response.content
        except requests.exceptions.SSLError:
            # a certificate does not become trusted by retrying
            raise SourceError(
                f"TLS verification of {self._config.base_url} failed: its certificate is not "
                "trusted; point EXPRESS_CHAT_CA_BUNDLE at the CA that signed it"
            ) from None
        except requests.Timeout:
            raise TransientError("timeout", "no answer within the timeout") from None
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            raise TransientError(
                "connection", f"the connection failed ({type(exc).__name__})"
            ) from None
        except requests.RequestException as exc:
            raise TransientError("http", f"the request failed ({type(exc).__name__})") from None
        received_at = time.time()
        items = classify(
            response.status_code,
            response.headers.get("Content-Type", ""),
            content,
            response.headers.get("Retry-After"),
            secret=self._config.token,
        )
        server_time = http_date(response.headers.get("Date"))
        if server_time is not None:
            self._stats.saw_clock(server_time, received_at)
        return Reply(items, server_time, received_at)

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = False
            session.proxies = self._proxies
            session.verify = self._verify
            session.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=1))
            session.mount("https://", HTTPAdapter(pool_connections=1, pool_maxsize=1))
            session.headers["Content-Type"] = "application/json"
            session.auth = _BearerKey(self._config.token)
            self._local.session = session
            with self._sessions_lock:
                self._sessions.append(session)
        return session

    def close(self) -> None:
        with self._sessions_lock:
            for session in self._sessions:
                session.close()
            self._sessions.clear()


def probe(config: ClientConfig) -> int:
    """One real request (an empty millisecond in 1970): raises what a sync would, else the
    number of records it returned. For `etl-contacts doctor`."""
    single_try = dataclasses.replace(config, max_attempts=1)
    client = ApiClient(single_try, ExtractStats())
    empty = {"startAt": "1970-01-01T00:00:00.000Z", "endsAt": "1970-01-01T00:00:00.001Z"}
    try:
        return len(client.fetch({CREATED_AT: empty}, 1).items)
    finally:
        client.close()
