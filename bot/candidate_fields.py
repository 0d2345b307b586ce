"""Rules for a candidate's own fields, shared by call logging and lead intake."""

from __future__ import annotations

import datetime as dt

MAX_NAME = 100


def age_on(dob: dt.date, day: dt.date) -> int:
    return day.year - dob.year - ((day.month, day.day) < (dob.month, dob.day))
