"""The secure page's use cases: add a candidate, their contact card, notes, search.

Identifiers (name, phone, date of birth, notes) are read and written only here and shown only on
the secure page; every view of them writes an audit event. No Slack, no SQL."""
