"""Named values the database stores (in columns or in a study's settings): one definition of
each list, used by the repositories' queries and by the rules in bot/ alike."""

from __future__ import annotations

# referrals.state: the states in which a referral is still moving (bot/referrals/states.py has
# the transitions)
REFERRAL_OPEN_STATES = ("pending_approval", "approved", "sent_to_site", "site_contacted",
                        "visit_scheduled", "screened")

# callbacks.status: a callback that still has to be made
CALLBACK_OPEN_STATUSES = ("scheduled", "snoozed")

# prescreen_calls.outcome: the call did not reach the candidate
UNANSWERED_OUTCOMES = ("no_answer", "left_voicemail")

# studies.assignment: how new leads are shared among coordinators
ASSIGNMENT_STRATEGIES = ("least_loaded", "round_robin")

# a study's weekly_update.day
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# the candidate fields a lead source's CSV columns can map to
LEAD_FIELDS = ("name", "phone", "dob", "state", "zip", "email", "consent", "consent_to_text")

# calendar_events.show_as (Outlook's free/busy): the values that make a mailbox busy
BUSY_SHOW_AS = ("busy", "tentative", "oof")
