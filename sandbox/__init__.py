"""Sandbox mode: the real app against local Slack and Microsoft Graph stand-ins, with a browser
console and demo data. It depends on the app (`app`) and the domain; nothing there imports it
except `app.runtime.sandbox_package`, the one seam used when no Slack token is set."""

from sandbox.reset import reset_sandbox
from sandbox.runtime import start_sandbox
from sandbox.state import Sandbox

__all__ = ["Sandbox", "reset_sandbox", "start_sandbox"]
