"""A local stand-in for Slack: the Web API the app calls, and the signed requests Slack sends."""

from sandbox.slack_standin.sender import SlackSender, state_value
from sandbox.slack_standin.server import RecordedCall, SlackError, SlackStandin

__all__ = ["RecordedCall", "SlackError", "SlackSender", "SlackStandin", "state_value"]
