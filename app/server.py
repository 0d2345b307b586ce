"""Gunicorn entry points: `serve` (web only) and `run` (web + worker in one process)."""

from __future__ import annotations

import logging
import threading
from typing import Any

from gunicorn.app.base import BaseApplication

from app.runtime import Runtime, build_runtime
from app.scheduler import run_worker
from bot.config import Settings

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

    def _worker_exit(self, _server: Any, _worker: Any) -> None:
        self._stop.set()
        if self.runtime is not None:
            self.runtime.close()


def serve(settings: Settings, *, with_worker: bool = False) -> None:
    workers = 1 if (with_worker or settings.sandbox) else settings.web_concurrency
    _Gunicorn(settings, with_worker=with_worker, workers=workers).run()
