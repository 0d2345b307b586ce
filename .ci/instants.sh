#!/usr/bin/env bash
# The time-sensitive stories, run as if the wall clock read instants that have bitten
# schedulers before (pytest --now; tests that need a fixed business time still set their own).
#   bash .ci/instants.sh            -> every instant below, SQLite; exits non-zero on the first failure
#   bash .ci/instants.sh 2 5        -> only instants 2 and 5 (1-based)
# The browser story runs at the first instant only (it is slow and has nothing else to learn).
set -euo pipefail
cd "$(dirname "$0")/.."

STORIES=(
  tests/test_sandbox_console.py
  tests/test_daily_digest.py
  tests/test_weekly_update.py
  tests/test_your_day.py
  tests/test_callback_reminders.py
  tests/test_calling_windows.py
  tests/test_stage_slas.py
  tests/test_work_queue.py
  tests/test_lead_assignment.py
  tests/test_kpis.py
  tests/test_prescreen_stats.py
)
BROWSER=(
  --deselect tests/test_sandbox_console.py::test_try_the_whole_bot_in_a_browser
  --deselect tests/test_sandbox_console.py::test_mrkdwn_is_escaped_before_formatting
  --deselect tests/test_sandbox_console.py::test_log_a_new_candidate_through_the_secure_page
)

# TZ (the machine's local zone) and the instant, with its offset in that zone.
INSTANTS=(
  "America/Denver   2026-12-06T18:24:00-07:00"  # Sunday evening: yesterday's digest still inside its 12 h catch-up
  "America/Denver   2026-12-06T23:30:00-07:00"  # late Sunday evening, already Monday in UTC
  "America/New_York 2026-02-28T23:59:00-05:00"  # 23:59 on the last day of a month
  "America/Chicago  2027-01-01T00:01:00-06:00"  # 00:01 on the first day of a month and a year
  "America/New_York 2026-03-08T01:59:00-05:00"  # a minute before clocks spring forward
  "America/Chicago  2026-11-01T01:30:00-05:00"  # the first of the two 01:30s when clocks fall back
)

pick=("$@")
[ ${#pick[@]} -gt 0 ] || pick=($(seq 1 ${#INSTANTS[@]}))
for n in "${pick[@]}"; do
  read -r zone instant <<<"${INSTANTS[$((n - 1))]:-}"
  [ -n "${instant:-}" ] || { echo "no instant number $n (1 to ${#INSTANTS[@]})" >&2; exit 2; }
  extra=()
  [ "$n" -eq 1 ] || extra=("${BROWSER[@]}")
  echo "== stories as if at $instant (TZ=$zone)"
  start=$SECONDS
  # pytest exits non-zero on a failure and with 5 when nothing was collected: both stop CI.
  env -u DATABASE_URL TZ="$zone" PRESCREEN_TEST_NOW="$instant" \
    .venv/bin/python -m pytest -q -p no:cacheprovider "${extra[@]}" "${STORIES[@]}"
  echo "   ($((SECONDS - start)) s)"
done
