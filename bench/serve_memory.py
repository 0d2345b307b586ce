"""Resident memory of `prescreen-bot serve` (gunicorn master + workers, and each web worker on
its own) at rest and after 1,000 signed requests.
Usage: python -m bench.serve_memory [--requests N] [--database-url URL] [--workers 2]"""

from __future__ import annotations

import argparse
import time

from bench._harness import COORD, db_label, rss_mb, served, table, worker_pids


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--database-url")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    # portal mode, the default: the secure page's templates and sign-in are part of the app
    portal = {"PHI_SURFACE": "portal", "PUBLIC_URL": "http://127.0.0.1:8000",
              "SLACK_OIDC_CLIENT_ID": "bench", "SLACK_OIDC_CLIENT_SECRET": "bench"}
    with served(args.database_url, web_concurrency=args.workers, extra_env=portal) as s:
        time.sleep(2)
        rest = rss_mb(s.proc.pid)
        rest_workers = [rss_mb(p, children=False) for p in worker_pids(s.proc.pid)]
        started = time.monotonic()
        for i in range(args.requests):
            text = "help" if i % 2 else "status BEN-0001"
            resp = s.sender.slash_command(COORD, text=text, channel_id="C0BENCH01")
            assert resp.status_code == 200, resp.status_code
        elapsed = time.monotonic() - started
        time.sleep(1)
        after = rss_mb(s.proc.pid)
        after_workers = [rss_mb(p, children=False) for p in worker_pids(s.proc.pid)]
        label = db_label(s.database_url)
    print(table([
        ("RSS at rest", f"{args.workers} workers", f"{rest:.0f} MiB", "-", label),
        (f"RSS after {args.requests} signed requests", f"{args.workers} workers", f"{after:.0f} MiB",
         f"{args.requests / elapsed:.0f} req/s", label),
        ("RSS of one web worker at rest", "largest", f"{max(rest_workers):.0f} MiB", "-", label),
        (f"RSS of one web worker after {args.requests}", "largest", f"{max(after_workers):.0f} MiB",
         "-", label),
    ], ("what", "size", "resident memory", "throughput", "database")))


if __name__ == "__main__":
    main()
