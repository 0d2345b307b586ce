"""Outlook/Teams calendars in Slack: today's meetings, free slots, callback collisions."""
