"""Microsoft Graph calendar client on requests: calendarView, calendarView/delta, getSchedule, $batch.

Throttling and faults: 429/503/504 honour Retry-After (seconds, possibly fractional, or an HTTP
date) with a little jitter, exponential backoff with jitter when the header is absent, a bounded
number of retries, and at most `per_mailbox_limit` (Outlook allows 4) concurrent requests per
mailbox. Network errors and timeouts end as `GraphUnavailable`.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import requests

from integrations import metrics
from integrations.graph.auth import TokenCredential
from integrations.graph.errors import (
    GraphError,
    GraphRequestError,
    GraphSyncReset,
    GraphThrottled,
    GraphUnavailable,
    explain_graph_error,
)
from integrations.graph.http import PinnedSession
from integrations.graph.types import (
    EVENT_SELECT,
    DeltaResult,
    GraphEvent,
    ScheduleInfo,
    parse_event,
    parse_schedule,
)

log = logging.getLogger("prescreen.graph")

RETRYABLE = frozenset({429, 503, 504})
SYNC_RESET_CODES = frozenset({"syncstatenotfound", "syncstateinvalid", "resyncrequired"})
MAX_BATCH = 20
MAX_SCHEDULES = 20


def graph_instant(value: dt.datetime) -> str:
    """ISO 8601 UTC with a Z, as calendarView's startDateTime/endDateTime expect."""
    if value.tzinfo is None:
        raise ValueError("naive datetime given to Graph")
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        seconds = (when - dt.datetime.now(dt.UTC)).total_seconds()
    return max(0.0, seconds)


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: Any


@dataclass
class _Req:
    method: str
    url: str
    mailbox: str
    kind: str
    body: dict[str, Any] | None = None
    prefer: tuple[str, ...] = ()


@dataclass
class DeltaSpec:
    """One mailbox to sync: continue from `delta_link`, or start a round over [start, end)."""

    mailbox: str
    start: dt.datetime
    end: dt.datetime
    delta_link: str | None = None
    timezone: str = "UTC"  # the mailbox owner's zone: all-day dates become local midnights in it


@dataclass
class CallStats:
    requests: int = 0  # HTTP requests sent to Graph (a $batch counts once)
    by_kind: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, kind: str) -> None:
        with self._lock:
            self.requests += 1
            self.by_kind[kind] += 1

    def retried(self, n: int = 1) -> None:
        with self._lock:
            self.retries += n

class MailboxLimiter:
    """At most `limit` concurrent requests per mailbox across all threads of this process."""

    def __init__(self, limit: int = 4) -> None:
        self.limit = limit
        self._sems: dict[str, threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()

    def _sem(self, mailbox: str) -> threading.BoundedSemaphore:
        with self._lock:
            sem = self._sems.get(mailbox)
            if sem is None:
                sem = self._sems[mailbox] = threading.BoundedSemaphore(self.limit)
            return sem

    @contextmanager
    def hold(self, mailboxes: Sequence[str]) -> Iterator[None]:
        with ExitStack() as stack:
            for mb in sorted({m.lower() for m in mailboxes if m}):  # fixed order: no deadlock
                sem = self._sem(mb)
                sem.acquire()
                stack.callback(sem.release)
            yield


class GraphClient:
    def __init__(
        self,
        credential: TokenCredential,
        *,
        base_url: str = "https://graph.microsoft.com/v1.0",
        verify: bool | str = True,
        timeout: tuple[float, float] = (5.0, 30.0),
        max_retries: int = 4,
        backoff_base: float = 0.5,
        max_delay: float = 60.0,
        per_mailbox_limit: int = 4,
        page_size: int = 100,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
        session: requests.Session | None = None,
    ) -> None:
        self.credential = credential
        self.base_url = base_url.rstrip("/")
        self.session = session or PinnedSession(verify=verify, timeout=timeout)
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.max_delay = max_delay
        self.page_size = page_size
        self.sleep = sleep
        self.rand = rand
        self.limiter = MailboxLimiter(per_mailbox_limit)
        self.stats = CallStats()

    def close(self) -> None:
        self.session.close()

    # ----- public reads -----

    def calendar_view(
        self, mailbox: str, start: dt.datetime, end: dt.datetime, *, timezone: str = "UTC"
    ) -> list[GraphEvent]:
        """Occurrences, exceptions and single events overlapping [start, end), cancelled ones dropped.

        Times come back in `timezone` (Prefer: outlook.timezone) and are returned as UTC instants;
        all-day events keep their dates.
        """
        params = {
            "startDateTime": graph_instant(start),
            "endDateTime": graph_instant(end),
            "$select": EVENT_SELECT,
            "$orderby": "start/dateTime",
        }
        url: str | None = f"{self._user(mailbox)}/calendarView?{urlencode(params, safe='$,/')}"
        events: dict[str, GraphEvent] = {}
        while url:
            body = self._one(_Req("GET", url, mailbox, "calendarView", prefer=self._prefer(timezone)))
            for item in body.get("value") or []:
                if "@removed" in item:
                    continue
                ev = parse_event(item, timezone)
                events[ev.id] = ev
            url = body.get("@odata.nextLink")
        return sorted((e for e in events.values() if not e.is_cancelled), key=lambda e: (e.start, e.id))

    def delta(self, spec: DeltaSpec) -> DeltaResult:
        result = self.delta_many([spec])[spec.mailbox]
        if isinstance(result, GraphError):
            raise result
        return result

    def delta_many(self, specs: Sequence[DeltaSpec]) -> dict[str, DeltaResult | GraphError]:
        """One delta round per mailbox, pages of many mailboxes sent together in $batch requests.

        A stale delta link (410 Gone / syncStateNotFound) restarts that mailbox with a full round
        (`result.full` is then True). Items repeated across pages are merged, last one wins.
        """
        state: dict[str, DeltaResult] = {}
        urls: dict[str, str] = {}
        specs_by_mb = {s.mailbox: s for s in specs}
        done: dict[str, DeltaResult | GraphError] = {}
        restarted: set[str] = set()
        for s in specs:
            state[s.mailbox] = DeltaResult(mailbox=s.mailbox, full=s.delta_link is None)
            urls[s.mailbox] = s.delta_link or self._delta_start_url(s)
        while urls:
            reqs = {mb: _Req("GET", url, mb, "delta", prefer=self._prefer("UTC")) for mb, url in urls.items()}
            raw = self._execute(reqs)
            urls = {}
            for mb, r in raw.items():
                res = state[mb]
                res.calls += 1
                if isinstance(r, GraphError):
                    done[mb] = r
                    continue
                try:
                    body = self._check(r)
                except GraphSyncReset as exc:
                    if mb in restarted:
                        done[mb] = exc
                        continue
                    log.info("graph delta for %s: sync state reset, full resync", mb)
                    restarted.add(mb)
                    state[mb] = DeltaResult(mailbox=mb, full=True, calls=res.calls)
                    urls[mb] = self._delta_start_url(specs_by_mb[mb])
                    continue
                except GraphError as exc:
                    done[mb] = exc
                    continue
                tz = specs_by_mb[mb].timezone
                for item in body.get("value") or []:
                    item_id = str(item.get("id") or "")
                    if not item_id:
                        continue
                    if "@removed" in item:
                        res.events.pop(item_id, None)
                        res.removed.add(item_id)
                    else:
                        res.removed.discard(item_id)
                        res.events[item_id] = parse_event(item, tz)
                if body.get("@odata.nextLink"):
                    urls[mb] = str(body["@odata.nextLink"])
                elif body.get("@odata.deltaLink"):
                    res.delta_link = str(body["@odata.deltaLink"])
                    done[mb] = res
                else:
                    done[mb] = GraphRequestError("delta response had neither nextLink nor deltaLink", 200)
        return done

    def get_schedule(
        self,
        schedules: Sequence[str],
        start: dt.datetime,
        end: dt.datetime,
        *,
        interval_minutes: int = 30,
        fallback_tz: str = "UTC",
    ) -> dict[str, ScheduleInfo]:
        """Free/busy of up to 20 mailboxes per getSchedule call (more: several calls, one $batch)."""
        uniq = list(dict.fromkeys(s for s in schedules if s))
        chunks = [uniq[i : i + MAX_SCHEDULES] for i in range(0, len(uniq), MAX_SCHEDULES)]
        reqs: dict[str, _Req] = {}
        for i, chunk in enumerate(chunks):
            body = {
                "schedules": chunk,
                "startTime": {"dateTime": _naive_utc(start), "timeZone": "UTC"},
                "endTime": {"dateTime": _naive_utc(end), "timeZone": "UTC"},
                "availabilityViewInterval": interval_minutes,
            }
            reqs[str(i)] = _Req(
                "POST",
                f"{self._user(chunk[0])}/calendar/getSchedule",
                chunk[0],
                "getSchedule",
                body=body,
                prefer=self._prefer("UTC", paged=False),
            )
        out: dict[str, ScheduleInfo] = {}
        for key, r in self._execute(reqs).items():
            if isinstance(r, GraphError):
                raise r
            body = self._check(r)
            for item in body.get("value") or []:
                info = parse_schedule(item, interval_minutes, start, fallback_tz)
                out[info.schedule_id.lower()] = info
            for mb in chunks[int(key)]:
                out.setdefault(mb.lower(), ScheduleInfo(schedule_id=mb, error="no schedule returned"))
        return {mb: out[mb.lower()] for mb in uniq}

    # ----- plumbing -----

    def _user(self, mailbox: str) -> str:
        return f"{self.base_url}/users/{quote(mailbox, safe='@.')}"

    def _prefer(self, timezone: str, *, paged: bool = True) -> tuple[str, ...]:
        prefs = [f'outlook.timezone="{timezone}"']
        if paged:
            prefs.append(f"odata.maxpagesize={self.page_size}")
        return tuple(prefs)

    def _delta_start_url(self, spec: DeltaSpec) -> str:
        # $select is not supported on calendarView delta: the full event comes back.
        params = {"startDateTime": graph_instant(spec.start), "endDateTime": graph_instant(spec.end)}
        return f"{self._user(spec.mailbox)}/calendarView/delta?{urlencode(params)}"

    def _headers(self, prefer: Sequence[str], json_body: bool = False) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.credential.token()}", "Accept": "application/json"}
        if prefer:
            headers["Prefer"] = ", ".join(prefer)
        if json_body:
            headers["Content-Type"] = "application/json"
        return headers

    def _one(self, req: _Req) -> dict[str, Any]:
        r = self._execute({"0": req})["0"]
        if isinstance(r, GraphError):
            raise r
        return self._check(r)

    def _check(self, r: RawResponse) -> dict[str, Any]:
        body = r.body if isinstance(r.body, dict) else {}
        if 200 <= r.status < 300:
            return body
        err = body.get("error") if isinstance(body.get("error"), dict) else {}
        code = str(err.get("code") or "") or None
        message = str(err.get("message") or "")
        if r.status == 410 or (code or "").lower() in SYNC_RESET_CODES:
            raise GraphSyncReset(f"HTTP {r.status} {code or 'Gone'}: the delta token expired", r.status, code)
        raise GraphRequestError(explain_graph_error(r.status, code, message), r.status, code)

    def _execute(self, reqs: Mapping[str, _Req]) -> dict[str, RawResponse | GraphError]:
        """Send requests (one directly, several as $batch), retrying 429/503/504 and network errors."""
        pending = dict(reqs)
        attempts: Counter[str] = Counter()
        results: dict[str, RawResponse | GraphError] = {}
        while pending:
            started = time.perf_counter()
            raw = self._round(pending)
            took = time.perf_counter() - started
            for r in raw.values():
                metrics.graph_call("network" if isinstance(r, Exception)
                                   else "throttled" if r.status in RETRYABLE
                                   else "error" if r.status >= 400 else "ok", took)
            wait = 0.0
            retry: dict[str, _Req] = {}
            for key, r in raw.items():
                if isinstance(r, RawResponse) and r.status not in RETRYABLE:
                    results[key] = r
                    continue
                attempts[key] += 1
                retry_after = (
                    parse_retry_after(r.headers.get("retry-after")) if isinstance(r, RawResponse) else None
                )
                if attempts[key] > self.max_retries or (retry_after or 0) > self.max_delay:
                    results[key] = self._give_up(pending[key], r, attempts[key], retry_after)
                    continue
                retry[key] = pending[key]
                if retry_after is not None:
                    delay = retry_after + self.rand() * min(1.0, 0.1 * retry_after)
                else:
                    cap = min(self.max_delay, self.backoff_base * 2 ** (attempts[key] - 1))
                    delay = cap / 2 + self.rand() * cap / 2
                wait = max(wait, delay)
            if retry:
                self.stats.retried(len(retry))
                self.sleep(wait)
            pending = retry
        return results

    def _give_up(
        self, req: _Req, r: RawResponse | Exception, attempts: int, retry_after: float | None
    ) -> GraphError:
        if isinstance(r, Exception):
            return GraphUnavailable(
                f"cannot reach Microsoft Graph for {req.mailbox} ({type(r).__name__}) "
                f"after {attempts} attempts"
            )
        if r.status == 429:
            hint = f"; Graph asks to wait {retry_after:g}s" if retry_after is not None else ""
            return GraphThrottled(
                f"Microsoft Graph is throttling requests for {req.mailbox} (HTTP 429) after {attempts} "
                f"attempts{hint}",
                retry_after,
            )
        return GraphUnavailable(
            f"Microsoft Graph is unavailable (HTTP {r.status}) for {req.mailbox} after {attempts} attempts"
        )

    def _round(self, pending: Mapping[str, _Req]) -> dict[str, RawResponse | Exception]:
        if len(pending) == 1:
            key, req = next(iter(pending.items()))
            return {key: self._http(req)}
        out: dict[str, RawResponse | Exception] = {}
        items = list(pending.items())
        batchable = [(k, r) for k, r in items if r.url.startswith(self.base_url + "/")]
        for k, r in items:
            if not r.url.startswith(self.base_url + "/"):
                out[k] = self._http(r)
        for i in range(0, len(batchable), MAX_BATCH):
            out.update(self._http_batch(batchable[i : i + MAX_BATCH]))
        return out

    def _http(self, req: _Req) -> RawResponse | Exception:
        headers = self._headers(req.prefer, json_body=req.body is not None)
        self.stats.add(req.kind)
        try:
            with self.limiter.hold([req.mailbox]):
                resp = self.session.request(req.method, req.url, headers=headers, json=req.body)
        except (requests.ConnectionError, requests.Timeout) as exc:
            log.warning("graph %s for %s: %s", req.kind, req.mailbox, type(exc).__name__)
            return exc
        return RawResponse(resp.status_code, {k.lower(): v for k, v in resp.headers.items()}, _body(resp))

    def _http_batch(self, chunk: Sequence[tuple[str, _Req]]) -> dict[str, RawResponse | Exception]:
        if len(chunk) == 1:
            key, req = chunk[0]
            return {key: self._http(req)}
        requests_json = []
        for i, (_, req) in enumerate(chunk):
            inner: dict[str, Any] = {"id": str(i), "method": req.method, "url": req.url[len(self.base_url) :]}
            hdrs: dict[str, str] = {}
            if req.prefer:
                hdrs["Prefer"] = ", ".join(req.prefer)
            if req.body is not None:
                inner["body"] = req.body
                hdrs["Content-Type"] = "application/json"
            if hdrs:
                inner["headers"] = hdrs
            requests_json.append(inner)
        headers = self._headers((), json_body=True)
        self.stats.add("$batch")
        try:
            with self.limiter.hold([r.mailbox for _, r in chunk]):
                resp = self.session.post(
                    f"{self.base_url}/$batch", headers=headers, json={"requests": requests_json}
                )
        except (requests.ConnectionError, requests.Timeout) as exc:
            log.warning("graph $batch: %s", type(exc).__name__)
            return {key: exc for key, _ in chunk}
        outer = RawResponse(resp.status_code, {k.lower(): v for k, v in resp.headers.items()}, _body(resp))
        if outer.status != 200 or not isinstance(outer.body, dict):
            return {key: outer for key, _ in chunk}
        by_id = {str(r.get("id")): r for r in outer.body.get("responses") or []}
        out: dict[str, RawResponse | Exception] = {}
        for i, (key, _) in enumerate(chunk):
            r = by_id.get(str(i))
            if r is None:
                out[key] = RawResponse(503, {}, {"error": {"code": "missingBatchResponse"}})
                continue
            hdrs = {str(k).lower(): str(v) for k, v in (r.get("headers") or {}).items()}
            out[key] = RawResponse(int(r.get("status") or 500), hdrs, r.get("body"))
        return out


def _naive_utc(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _body(resp: requests.Response) -> Any:
    if not resp.content:
        return None
    try:
        return resp.json()
    except ValueError:
        return None
