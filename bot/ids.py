"""Block, action and callback ids: one place, no string literals scattered around."""

from __future__ import annotations

COMMAND = "/prescreen"

# log-call modal
LOG_CALL_VIEW = "log_call"
STUDY_BLOCK, STUDY_SELECT = "study", "study_select"
MODE_BLOCK, MODE_SELECT = "candidate_mode", "candidate_mode_select"
REF_BLOCK, REF_INPUT = "existing_ref", "existing_ref_input"
NAME_BLOCK, NAME_INPUT = "name", "name_input"
PHONE_BLOCK, PHONE_INPUT = "phone", "phone_input"
DOB_BLOCK, DOB_INPUT = "dob", "dob_input"
REGION_BLOCK, REGION_INPUT = "region", "region_input"
TZ_BLOCK, TZ_INPUT = "timezone", "timezone_input"
CONSENT_BLOCK, CONSENT_INPUT = "consent", "consent_input"
QUESTION_PREFIX, ANSWER_INPUT = "q:", "answer:"
OUTCOME_BLOCK, OUTCOME_SELECT = "outcome", "outcome_select"
SITE_BLOCK, SITE_SELECT = "site", "site_select"
CB_DATE_BLOCK, CB_DATE_INPUT = "callback_date", "callback_date_input"
CB_TIME_BLOCK, CB_TIME_INPUT = "callback_time", "callback_time_input"
NOTES_BLOCK, NOTES_INPUT = "notes", "notes_input"
CANDIDATE_INFO_BLOCK = "candidate_info"
ADD_ON_PAGE_BLOCK = "add_on_page"

# link buttons to the secure page (Slack still sends a block_actions for them; acked, no more)
OPEN_PAGE_PREFIX = "open_page"
OPEN_PAGE_ADD = "open_page_add_candidate"
OPEN_PAGE_CARD = "open_page_contact_card"
OPEN_PAGE_SEARCH = "open_page_search"

# App Home
HOME_LOG_CALL = "home_log_call"
HOME_REFRESH = "home_refresh"

# referral card
REFERRAL_APPROVE = "referral_approve"
REFERRAL_REJECT = "referral_reject"
REFERRAL_ADVANCE = "referral_advance"
REFERRAL_SIGN = "referral_sign"  # a link button to the signature page (acked, nothing else)
REFERRAL_ACTIONS_BLOCK = "referral_actions"
REJECT_VIEW = "referral_reject_view"
REJECT_REASON_BLOCK, REJECT_REASON_SELECT = "reject_reason", "reject_reason_select"
REJECT_TEXT_BLOCK, REJECT_TEXT_INPUT = "reject_text", "reject_text_input"

VISIT_VIEW = "referral_visit_view"
VISIT_SLOT_BLOCK, VISIT_SLOT_SELECT = "visit_slot", "calendar_visit_slot"
VISIT_DATE_BLOCK, VISIT_DATE_INPUT = "visit_date", "visit_date_input"

# RingCentral: click-to-call
RC_CALL = "rc_call"
RC_CALL_BLOCK = "rc_call_actions"

# callback reminders
CALLBACK_LOG = "callback_log"
CALLBACK_SNOOZE = "callback_snooze"
CALLBACK_RESCHEDULE = "callback_reschedule"
CALLBACK_HANDOFF = "callback_handoff"
CALLBACK_DONE = "callback_done"
CALLBACK_ACTIONS_BLOCK = "callback_actions"
RESCHEDULE_VIEW = "callback_reschedule_view"
RS_DATE_BLOCK, RS_DATE_INPUT = "reschedule_date", "reschedule_date_input"
RS_TIME_BLOCK, RS_TIME_INPUT = "reschedule_time", "reschedule_time_input"
HANDOFF_VIEW = "callback_handoff_view"
HANDOFF_BLOCK, HANDOFF_SELECT = "handoff_to", "handoff_to_select"

# inbound lead modal (/prescreen lead)
LEAD_VIEW = "lead_add"
LEAD_STUDY_BLOCK, LEAD_STUDY_SELECT = "lead_study", "lead_study_select"
LEAD_NAME_BLOCK, LEAD_NAME_INPUT = "lead_name", "lead_name_input"
LEAD_PHONE_BLOCK, LEAD_PHONE_INPUT = "lead_phone", "lead_phone_input"
LEAD_DOB_BLOCK, LEAD_DOB_INPUT = "lead_dob", "lead_dob_input"
LEAD_STATE_BLOCK, LEAD_STATE_SELECT = "lead_state", "lead_state_select"
LEAD_SOURCE_BLOCK, LEAD_SOURCE_SELECT = "lead_source", "lead_source_select"
LEAD_CONSENT_BLOCK, LEAD_CONSENT_INPUT = "lead_consent", "lead_consent_input"
