"""Ack time of `/prescreen` (opens the log-call modal) and of the modal's view submission
(validates, encrypts, stores the call, opens the referral) over N signed requests each,
against the real `prescreen-bot serve`.

Usage: python -m bench.ack_latency [--n 200] [--database-url URL]"""

from __future__ import annotations

import argparse
import datetime as dt
import time

from bench._harness import COORD, db_label, served, table
from bot import ids


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--database-url")
    args = ap.parse_args()
    command: list[float] = []
    submit: list[float] = []
    with served(args.database_url) as s:
        for i in range(args.n):
            before = len(s.standin.calls_to("views.open"))
            t0 = time.monotonic()
            resp = s.sender.slash_command(COORD, text="", channel_id="C0BENCH01")
            command.append(time.monotonic() - t0)
            assert resp.status_code == 200
            view = s.standin.wait_for(
                lambda st, b=before: st.open_view(COORD) if len(st.calls_to("views.open")) > b else None,
                timeout=10)
            fields = {
                ids.NAME_INPUT: f"Bench Person {i}",
                ids.PHONE_INPUT: f"(617) 2{i // 10000:02d}-{i % 10000:04d}",
                ids.DOB_INPUT: dt.date(1950 + i % 40, 1 + i % 12, 1 + i % 28),
                "answer:age": str(30 + i % 50), "answer:dx": "no",
                ids.OUTCOME_SELECT: "pre_qualified" if i % 3 == 0 else "no_answer",
            }
            values = s.sender.fill(view["id"], fields)
            t0 = time.monotonic()
            resp = s.sender.view_submission(COORD, view["id"], values)
            submit.append(time.monotonic() - t0)
            assert resp.status_code == 200 and "errors" not in resp.text, resp.text
        label = db_label(s.database_url)
    print(table([
        ("/prescreen ack (modal opens after)", f"{args.n} requests", *s.summary(command), label),
        ("view_submission ack (call stored)", f"{args.n} requests", *s.summary(submit), label),
    ], ("what", "size", "p50", "p99", "mean", "database")))


if __name__ == "__main__":
    main()
