"""Shared set-up for the approval stories: the fixture studies file with ALZ's approval settings
changed and extra members, imported as an admin would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select

from bot import ids
from bot.studies.importer import import_studies
from storage.models import Referral
from tests.conftest import FIXTURES, Bot

ROBIN = "U0STRANGER"  # made a second ALZ approver in these stories
ALEX = "U0ADMIN01"  # made an ALZ admin in these stories


def configure(bot: Bot, tmp_path: Path, *, roles: dict[str, dict[str, str]] | None = None,
              **alz: Any) -> None:
    """ALZ with `alz` settings (approval_signature, approvals_needed…); `roles` adds or replaces
    members' roles, e.g. {ROBIN: {"ALZ": "approver"}}."""
    data = yaml.safe_load((FIXTURES / "studies.yaml").read_text())
    data["studies"][0].update(alz)
    members = {m["slack_id"]: m for m in data["members"]}
    for uid, r in (roles or {}).items():
        if uid in members:
            members[uid]["roles"] = r
        else:
            members[uid] = {"slack_id": uid, "timezone": "America/New_York", "roles": r}
    data["members"] = list(members.values())
    path = tmp_path / "studies-approvals.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    import_studies(bot.db, path, actor="test")


def button_value(message: dict[str, Any], action_id: str) -> str:
    return next(el["value"] for b in message["blocks"] if b.get("type") == "actions"
                for el in b["elements"] if el["action_id"] == action_id)


def referral(bot: Bot) -> Referral:
    with bot.db.session() as s:
        ref = s.scalars(select(Referral).order_by(Referral.id.desc())).first()
        assert ref is not None
        s.expunge(ref)
        return ref


def approve_click(bot: Bot, user: str, message: dict[str, Any], channel: str = "C0ALZ0001"
                  ) -> str:
    """Click Approve on the card as `user`; the private answer's text."""
    before = len(bot.standin.responses)
    bot.slack.click(user, ids.REFERRAL_APPROVE, button_value(message, ids.REFERRAL_APPROVE),
                    message=message, channel_id=channel)
    answers = bot.standin.wait_for(lambda s: s.responses if len(s.responses) > before else None,
                                   message=f"the answer to {user}'s click")
    return str(answers[-1]["payload"].get("text"))
