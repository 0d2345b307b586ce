"""What a running sandbox holds: the stand-in, the simulated user's sender, the clock, the demo."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from bot.clock import OffsetClock
from sandbox.slack_standin import SlackSender, SlackStandin

SANDBOX_TOKEN = "xoxb-sandbox-local"
SANDBOX_TEAM = "T0SANDBOX"


@dataclass
class Sandbox:
    standin: SlackStandin
    sender: SlackSender
    clock: OffsetClock
    demo: dict[str, Any]
    ctx: Any = None  # the app's AppContext, for running jobs after the clock moves
    port: int = 3000  # the console's port: the only one its pages answer on

    @property
    def members(self) -> list[dict[str, Any]]:
        return list(self.demo.get("members") or [])

    @property
    def channels(self) -> list[dict[str, str]]:
        out = []
        for s in self.demo.get("studies") or []:
            out.append({"id": s["channel"], "name": s["key"].lower() + "-prescreen"})
            for site in s.get("sites") or []:
                if site.get("channel"):
                    out.append({"id": site["channel"], "name": f"site-{site['key'].lower()}"})
        return out


def demo_file() -> Path:
    return Path(str(resources.files("sandbox").joinpath("demo.yaml")))
