"""Named jobs and the APScheduler process. The database is the truth: every tick selects what
is due and not yet done, so a worker that was down catches up once and never sends twice."""

from __future__ import annotations

import datetime as dt
import gc
import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bot.calendar.jobs import graph_sync_job
from bot.callbacks.jobs import cadence_job, callbacks_job
from bot.context import AppContext
from bot.digests.jobs import digests_job
from bot.housekeeping import purge_processed_requests
from bot.kpi_jobs import kpis_job
from bot.leads.assignment import assignment_job
from bot.leads.sla import slas_job
from bot.outbox import outbox_job
from bot.referrals.escalation import approvals_job
from bot.telephony.jobs import call_log_job, subscription_job
from integrations import metrics

log = logging.getLogger("prescreen.scheduler")

JobFunc = Callable[[AppContext], Any]


@dataclass(frozen=True)
class JobSpec:
    name: str
    description: str
    every_seconds: int
    func: JobFunc


def job_specs() -> list[JobSpec]:
    """Every named job, in the order `prescreen-bot jobs list` shows them."""
    return [
        JobSpec("callbacks", "send due callback reminders (DM) and escalate overdue callbacks", 30,
                callbacks_job),
        JobSpec("cadence", "plan the next attempt for unanswered candidates; unreachable after "
                "max attempts", 600, cadence_job),
        JobSpec("digests", "daily study digests, weekly stakeholder updates and 'your day' DMs, "
                "each once per period (late ones marked, >12 h late skipped)", 60, digests_job),
        JobSpec("assignment", "give unowned new leads to study coordinators (least loaded or "
                "round robin; skips out-of-office)", 60, assignment_job),
        JobSpec("slas", "stage SLA breaches: DM the owner once; channel note (counts) at 2x", 300,
                slas_job),
        JobSpec("kpis", "recompute the KPI rollups of the study days that changed (rebuild a "
                "study never built or whose time zone changed)", 60, kpis_job),
        JobSpec("approvals", "escalate referrals pending past their study's approval SLA, once "
                "(admins and available approvers, by DM)", 300, approvals_job),
        JobSpec("outbox", "deliver queued Slack messages (paced per channel, retried)", 2,
                outbox_job),
        JobSpec("graph_sync", "refresh the Outlook calendar cache (next 14 days, delta sync)", 300,
                graph_sync_job),
        JobSpec("call_log", "RingCentral: sync each matched extension's call log into attempts "
                "(full once, then incremental)", 120, call_log_job),
        JobSpec("ringcentral_webhook", "RingCentral: create and renew the webhook subscription "
                "for inbound texts", 3600, subscription_job),
        JobSpec(
            "housekeeping",
            "forget Slack request ids older than 7 days (retry de-duplication window)",
            3600,
            purge_processed_requests,
        ),
    ]


def find_job(name: str) -> JobSpec | None:
    return next((j for j in job_specs() if j.name == name), None)


def run_job(ctx: AppContext, name: str) -> Any:
    spec = find_job(name)
    if spec is None:
        raise KeyError(name)
    return spec.func(ctx)


def _safe(ctx: AppContext, spec: JobSpec) -> Callable[[], None]:
    names = frozenset(j.name for j in job_specs())

    def run() -> None:
        try:
            with metrics.timed_job(spec.name, names):
                result = spec.func(ctx)
            if result:
                log.info("job %s: %s", spec.name, result)
        except Exception:
            metrics.unexpected("job")
            log.exception("job %s failed; it runs again at its next tick", spec.name)

    return run


def build_scheduler(ctx: AppContext, specs: list[JobSpec] | None = None) -> BackgroundScheduler:
    # Memory job store on purpose: job stores must not be shared between schedulers, and
    # the schedule is code. Due work lives in the database rows the jobs select.
    scheduler = BackgroundScheduler(
        executors={"default": ThreadPoolExecutor(4)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 300},
        timezone="UTC",
    )
    for spec in specs or job_specs():
        scheduler.add_job(
            _safe(ctx, spec),
            IntervalTrigger(seconds=spec.every_seconds, timezone="UTC"),
            id=spec.name,
            name=spec.name,
            next_run_time=None if spec.every_seconds >= 600 else _soon(),
        )
    return scheduler


def _soon() -> Any:
    return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)


def run_worker(ctx: AppContext, stop: threading.Event | None = None) -> None:
    """Run the scheduler until SIGTERM/SIGINT (or `stop` is set), then shut down cleanly."""
    stop = stop or threading.Event()

    def _stop(signum: int, _frame: Any) -> None:
        log.info("worker got signal %s; stopping", signum)
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
    scheduler = build_scheduler(ctx)
    # everything loaded so far (modules, mappers, settings) lives as long as the process: keep it
    # out of the collector's full passes, which a tick's thousands of small objects trigger
    gc.freeze()
    scheduler.start()
    for job in scheduler.get_jobs():
        log.info("job %s scheduled (%s)", job.id, job.trigger)
    log.info("worker started with %d jobs", len(scheduler.get_jobs()))
    stop.wait()
    scheduler.shutdown(wait=True)
    log.info("worker stopped")
