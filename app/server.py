"""Gunicorn entry points: `serve` (web only) and `run` (web + worker in one process)."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from gunicorn.app.base import BaseApplication

from app.runtime import Runtime, build_runtime
from app.scheduler import run_worker
from bot.clock import SystemClock
from bot.config import Settings
from integrations import metrics
from storage.db import Database
from storage.repositories import outbox as outbox_repo

log = logging.getLogger("prescreen.server")


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings, *, with_worker: bool, workers: int) -> None:
        self.settings = settings
        self.with_worker = with_worker
        self.workers = workers
        self.runtime: Runtime | None = None
        self._stop = threading.Event()
        super().__init__()

    def load_config(self) -> None:
        cfg = {
            "bind": f"{self.settings.host}:{self.settings.port}",
            "workers": self.workers,
            "worker_class": "gthread",
            "threads": 8,
            "timeout": 30,
            "graceful_timeout": 10,
            "keepalive": 5,
            "loglevel": self.settings.log_level.lower(),
            "accesslog": None,
            "proc_name": "prescreen-bot",
            "worker_exit": self._worker_exit,
            "child_exit": self._child_exit,
            "when_ready": self._when_ready,
        }
        for key, value in cfg.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        # Runs in the worker process (no preload): one context, one DB pool per process.
        rt = build_runtime(self.settings, migrate_db=False)
        self.runtime = rt
        if self.settings.socket_mode:
            # Loaded only in Socket Mode (saves start-up time and memory for HTTP deployments).
            from slack_bolt.adapter.socket_mode import SocketModeHandler

            handler = SocketModeHandler(rt.bolt, self.settings.slack_app_token)
            handler.connect()
            rt.closers.append(handler.close)
            log.info("connected to Slack over Socket Mode")
        if self.with_worker:
            t = threading.Thread(target=run_worker, args=(rt.ctx, self._stop),
                                 name="scheduler", daemon=True)
            t.start()
        if rt.sandbox is not None:
            url = f"http://{self.settings.host}:{self.settings.port}/"
            print(f"\n  prescreen-bot sandbox is running: open {url}\n", flush=True)
        return rt.web

    def _child_exit(self, _server: Any, worker: Any) -> None:
        metrics.mark_process_dead(worker.pid)  # its live gauges go; its counters stay summed

    def _when_ready(self, _server: Any) -> None:
        if self.settings.metrics_port:
            serve_metrics_port(self.settings)

    def _worker_exit(self, _server: Any, _worker: Any) -> None:
        self._stop.set()
        if self.runtime is not None:
            self.runtime.close()


def serve(settings: Settings, *, with_worker: bool = False) -> None:
    workers = 1 if (with_worker or settings.sandbox) else settings.web_concurrency
    if settings.metrics_token or settings.metrics_port:
        metrics.prepare_multiprocess(os.environ.get(metrics.MULTIPROC_ENV)
                                     or str(Path(settings.data_dir) / "prometheus"))
    _Gunicorn(settings, with_worker=with_worker, workers=workers).run()


def serve_metrics_port(settings: Settings) -> threading.Thread:
    """METRICS_PORT: /metrics of every worker on its own loopback port, no token (only this
    machine can reach it), served by the gunicorn master."""
    db = Database(settings.database_url)
    ctx_clock = SystemClock()

    def live() -> dict[str, float]:
        with db.session() as session:
            n, age = outbox_repo.depth(session, now=ctx_clock.now())
        return {"prescreen_outbox_depth": float(n), "prescreen_outbox_oldest_due_seconds": age}

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ.get("PATH_INFO") != "/metrics":
            start_response("404 Not Found", [("content-type", "text/plain")])
            return [b"not found"]
        body, content_type = metrics.render(live)
        start_response("200 OK", [("content-type", content_type)])
        return [body]

    httpd = make_server("127.0.0.1", settings.metrics_port or 0, app, handler_class=_Quiet)
    t = threading.Thread(target=httpd.serve_forever, name="metrics", daemon=True)
    t.start()
    log.info("metrics on http://127.0.0.1:%s/metrics", settings.metrics_port)
    return t


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass
