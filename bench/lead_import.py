"""Lead intake: import throughput (rows/s) of a generated leads CSV through the same function as
`prescreen-bot leads import`: pass 1 checks every row, pass 2 dedupes and inserts in one
transaction. Then the same file again (every row a duplicate), and a dry run under tracemalloc
for the peak Python memory.

Usage: python -m bench.lead_import [--leads 100000] [--database-url URL]"""

from __future__ import annotations

import argparse
import csv
import random
import tempfile
import time
import tracemalloc
from pathlib import Path

from sqlalchemy import func, select

from bench._harness import bench_context, bench_database, db_label, fresh_database, table
from bot.leads.intake import import_leads
from storage.models import Candidate

STUDY_YAML = """
studies:
  - key: LEAD
    title: Lead intake benchmark
    channel: C0BENCH01
    timezone: America/New_York
    lead_sources:
      web-ads:
        label: Web ads
        cost_per_lead: 35.0
        columns: {name: Full Name, phone: Phone, dob: DOB, state: State, zip: Zip, consent: Consent}
"""
STATES = ["MA", "NY", "IL", "TX", "FL", "CA", "AZ", "WA", ""]
AREAS = ["312", "617", "212", "415", "713", "305", "602", "206"]


def generate(path: Path, n: int, seed: int = 7) -> None:
    rnd = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Full Name", "Phone", "DOB", "State", "Zip", "Email", "Consent", "utm_source"])
        for i in range(n):
            area = AREAS[i % len(AREAS)]
            w.writerow([f"Lead {rnd.choice(['Ada', 'Bo', 'Cy', 'Di'])} {i}",
                        f"({area}) {200 + (i // 10000) % 800:03d}-{i % 10000:04d}",
                        f"{rnd.randint(1,12):02d}/{rnd.randint(1,28):02d}/{rnd.randint(1945,2004)}",
                        rnd.choice(STATES), "", f"lead{i}@example.org", "Yes", "facebook"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--leads", type=int, default=100_000)
    ap.add_argument("--database-url")
    args = ap.parse_args()
    with fresh_database(args.database_url) as url:
        run(args.leads, url)


def run(n: int, url: str) -> None:
    db = bench_database(url, STUDY_YAML)
    ctx = bench_context(url, db)
    work = Path(tempfile.mkdtemp(prefix="prescreen-bench-"))
    path = work / "leads.csv"
    generate(path, n)
    size_mb = path.stat().st_size / 1e6

    first = import_leads(ctx, path, study_key="LEAD", source="web-ads", actor="bench")
    again = import_leads(ctx, path, study_key="LEAD", source="web-ads", actor="bench")
    tracemalloc.start()
    t0 = time.perf_counter()
    dry = import_leads(ctx, path, study_key="LEAD", source="web-ads", dry_run=True)
    traced = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    with db.session() as s:
        stored = s.scalar(select(func.count(Candidate.id)))
    assert first.created == n == stored and again.duplicates == n and dry.duplicates == n, \
        (first.created, stored, again.duplicates)
    label = db_label(url)
    print(table([
        ("import (all new)", f"{n:,}", f"{first.seconds:.1f}", f"{first.rows_per_second:,.0f}", label),
        ("same file again (all duplicates)", f"{n:,}", f"{again.seconds:.1f}",
         f"{again.rows_per_second:,.0f}", label),
        ("dry run under tracemalloc", f"{n:,}", f"{traced:.1f}", f"{n / traced:,.0f}", label),
    ], ("what", "rows", "seconds", "rows/s", "database")))
    print(f"file {size_mb:.1f} MB; peak Python memory during an import {peak / 1e6:.1f} MB; "
          f"timezone assumed for {first.timezone_assumed:,} leads without a state")
    db.dispose()


if __name__ == "__main__":
    main()
