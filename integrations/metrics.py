"""Prometheus series (README "Monitoring"). Every label comes from a fixed vocabulary — request
kinds, job names, Slack error codes we know, results — never patient data or free text: `label`
maps anything else to "other".

Multi-process (gunicorn): `prescreen-bot serve` sets PROMETHEUS_MULTIPROC_DIR (cleaned at
start) before any series exists; each process then writes its own files and `render()` merges
them. prometheus_client is imported on first use, so that setting is seen in time, and a
process that never records anything never loads it."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

REQUEST_KINDS = frozenset({"command", "block_actions", "view_submission", "view_closed",
                           "block_suggestion", "shortcut", "event", "other"})
SLACK_ERRORS = frozenset({"ok", "ratelimited", "channel_not_found", "not_in_channel",
                          "is_archived", "missing_scope", "invalid_auth", "account_inactive",
                          "token_revoked", "msg_too_long", "invalid_blocks", "internal_error",
                          "fatal_error", "service_unavailable", "request_timeout",
                          "user_not_found", "cant_update_message", "message_not_found",
                          "network", "other"})
SEND_RESULTS = frozenset({"sent", "retry", "failed"})
GRAPH_RESULTS = frozenset({"ok", "throttled", "error", "network"})
WHERE = frozenset({"slack_handler", "web", "job", "page"})
LATENESS_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 900, 3600, 4 * 3600, 12 * 3600)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

Gauges = Callable[[], dict[str, float]]
LIVE_DOCS = {"prescreen_outbox_depth": "Outbox messages waiting to be sent",
             "prescreen_outbox_oldest_due_seconds": "Age of the oldest due outbox message"}


def label(value: str | None, vocabulary: frozenset[str]) -> str:
    """A label value from a fixed vocabulary; anything else is "other"."""
    return value if value in vocabulary else "other"


_BUILD = threading.Lock()
_SERIES: list[SimpleNamespace] = []


def _m() -> SimpleNamespace:
    """The series, built once per process (two threads' first requests must not register
    every series twice: the registry refuses that)."""
    if not _SERIES:
        with _BUILD:
            if not _SERIES:
                _SERIES.append(_build())
    return _SERIES[0]


def _build() -> SimpleNamespace:
    from prometheus_client import Counter, Histogram

    return SimpleNamespace(
        ack=Histogram("prescreen_ack_seconds", "Time to answer a Slack request (ack)", ["kind"],
                      buckets=(.025, .05, .1, .2, .3, .5, 1, 2, 3, 5)),
        sends=Counter("prescreen_slack_sends_total", "Outbox sends to Slack by result and error",
                      ["result", "error"]),
        ratelimited=Counter("prescreen_slack_ratelimited_total", "Slack 429 answers"),
        retry_after=Counter("prescreen_slack_retry_after_seconds_total",
                            "Seconds of Retry-After Slack asked us to wait"),
        reminder_late=Histogram("prescreen_reminder_lateness_seconds",
                                "Callback reminders: queued this long after they were due",
                                buckets=LATENESS_BUCKETS),
        digest_late=Histogram("prescreen_digest_lateness_seconds",
                              "Digests: queued this long after their local send time",
                              buckets=LATENESS_BUCKETS),
        job=Histogram("prescreen_job_seconds", "Scheduled job run time", ["job"],
                      buckets=(.01, .05, .1, .5, 1, 2, 5, 10, 30, 60, 300)),
        job_failures=Counter("prescreen_job_failures_total", "Scheduled job runs that raised",
                             ["job"]),
        graph=Histogram("prescreen_graph_request_seconds", "Microsoft Graph call latency",
                        ["result"], buckets=(.05, .1, .25, .5, 1, 2, 5, 10, 30)),
        graph_throttled=Counter("prescreen_graph_throttled_total", "Graph 429/503/504 answers"),
        ringcentral=Histogram("prescreen_ringcentral_request_seconds",
                              "RingCentral REST call latency", ["result"],
                              buckets=(.05, .1, .25, .5, 1, 2, 5, 10, 30)),
        ringcentral_throttled=Counter("prescreen_ringcentral_throttled_total",
                                      "RingCentral 429/503 answers"),
        unexpected=Counter("prescreen_unexpected_errors_total",
                           "Unexpected errors (each logged with an error ref)", ["where"]),
    )


def ack(kind: str, seconds: float) -> None:
    _m().ack.labels(kind=label(kind, REQUEST_KINDS)).observe(seconds)


def slack_send(result: str, error: str | None = None) -> None:
    _m().sends.labels(result=label(result, SEND_RESULTS),
                      error=label(error or "ok", SLACK_ERRORS)).inc()


def slack_ratelimited(retry_after: float) -> None:
    _m().ratelimited.inc()
    _m().retry_after.inc(max(retry_after, 0.0))


def reminder_lateness(seconds: float) -> None:
    _m().reminder_late.observe(max(seconds, 0.0))


def digest_lateness(seconds: float) -> None:
    _m().digest_late.observe(max(seconds, 0.0))


def graph_call(result: str, seconds: float) -> None:
    _m().graph.labels(result=label(result, GRAPH_RESULTS)).observe(seconds)
    if result == "throttled":
        _m().graph_throttled.inc()


def ringcentral_call(result: str, seconds: float) -> None:
    _m().ringcentral.labels(result=label(result, GRAPH_RESULTS)).observe(seconds)
    if result == "throttled":
        _m().ringcentral_throttled.inc()


def unexpected(where: str) -> None:
    _m().unexpected.labels(where=label(where, WHERE)).inc()


@contextmanager
def timed_job(name: str, known: frozenset[str]) -> Iterator[None]:
    job = label(name, known)
    t0 = time.perf_counter()
    try:
        yield
    except Exception:
        _m().job_failures.labels(job=job).inc()
        raise
    finally:
        _m().job.labels(job=job).observe(time.perf_counter() - t0)


class _Live:
    """Figures read at scrape time (outbox depth, age of the oldest due message)."""

    def __init__(self, read: Gauges) -> None:
        self.read = read

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        try:
            values = self.read()
        except Exception:  # a scrape must not fail because the database blinked
            return
        for name, value in values.items():
            yield GaugeMetricFamily(name, LIVE_DOCS.get(name, name), value=value)


def render(live: Gauges | None = None) -> tuple[bytes, str]:
    """The exposition text of every process (multi-process mode) or of this one."""
    from prometheus_client import (
        CONTENT_TYPE_LATEST,
        REGISTRY,
        CollectorRegistry,
        generate_latest,
        multiprocess,
    )

    _m()  # every series appears from the first scrape on
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    text = generate_latest(registry)
    if live is not None:
        extra = CollectorRegistry()
        extra.register(_Live(live))  # type: ignore[arg-type]
        text += generate_latest(extra)
    return text, CONTENT_TYPE_LATEST


def prepare_multiprocess(directory: str) -> None:
    """Before any series exists: one directory for every process's files, emptied of a
    previous run's (their counters would be added to this run's)."""
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):
        if name.endswith(".db"):
            os.remove(os.path.join(directory, name))
    os.environ[MULTIPROC_ENV] = directory


def mark_process_dead(pid: int) -> None:
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
