"""Who runs a command outside Slack, for the audit trail."""

from __future__ import annotations

import os
import pwd
import socket


def os_user() -> str:
    """The operating-system account running this process, from its uid (not from $USER or
    $LOGNAME, which anyone can set)."""
    uid = os.getuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def operator_actor() -> str:
    """The audit actor of a CLI command: operating-system user and host."""
    return f"cli:{os_user()}@{socket.gethostname()}"[:64]
