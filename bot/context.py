"""What every workflow, handler and job receives: built once per process by the factory."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from slack_sdk import WebClient

from bot.clock import Clock, SystemClock
from bot.config import Settings
from storage.crypto import PHICipher
from storage.db import Database


@dataclass
class AppContext:
    settings: Settings
    db: Database
    cipher: PHICipher
    slack: WebClient
    clock: Clock = field(default_factory=SystemClock)
    graph: Any = None  # integrations.graph client when Microsoft Graph is configured
    extras: dict[str, Any] = field(default_factory=dict)
