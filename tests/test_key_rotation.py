"""Story: an admin rotates the encryption key. They prepend a new key, lookups keep working,
`prescreen-bot keys rotate` re-encrypts every patient field, and the old key can be dropped."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from app import cli
from bot.forms import FormErrors
from bot.prescreen import queries
from storage.crypto import PHICipher, PHICipherError
from storage.models import Candidate, PrescreenCall
from tests.conftest import ENCRYPTION_KEY, Bot
from tests.test_log_prescreen_call import CASEY, DOB, E164, NAME, new_candidate, submit

NEW_KEY = Fernet.generate_key().decode()


def rotate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, url: str, keys: str) -> tuple[int, str]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("PRESCREEN_ENCRYPTION_KEYS", keys)
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    out = io.StringIO()
    return cli.main(["keys", "rotate"], out=out), out.getvalue()


def test_rotate_then_drop_the_old_key(bot: Bot, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    submit(bot, CASEY, bot.open_modal(CASEY), new_candidate())
    url = bot.ctx.settings.database_url

    # 1. the new key goes in front; existing rows still decrypt and are still found
    bot.ctx.cipher = PHICipher([NEW_KEY, ENCRYPTION_KEY])
    assert [f.ref for f in queries.find_candidates(bot.ctx, CASEY, "617 555 0142")] == ["ALZ-0001"]

    # 2. rotate
    code, out = rotate(monkeypatch, tmp_path, url, f"{NEW_KEY},{ENCRYPTION_KEY}")
    assert code == 0, out
    notes = 0 if bot.ctx.settings.portal else 1  # portal: notes are written on the secure page
    assert f"re-encrypted 1 candidates, {notes} call notes" in out

    # 3. the old key is gone: everything still decrypts and lookups and duplicate checks work
    only_new = PHICipher([NEW_KEY])
    bot.ctx.cipher = only_new
    with bot.db.session() as s:
        cand = s.scalars(select(Candidate)).one()
        call = s.scalars(select(PrescreenCall)).one()
        assert only_new.decrypt(cand.name_enc) == NAME
        assert only_new.decrypt(cand.phone_enc) == E164
        if notes:
            assert only_new.decrypt(call.notes_enc).startswith("Prefers mornings")
        with pytest.raises(PHICipherError):
            PHICipher([ENCRYPTION_KEY]).decrypt(cand.name_enc)
    assert [f.ref for f in queries.find_candidates(bot.ctx, CASEY, NAME)] == ["ALZ-0001"]
    if bot.ctx.settings.portal:  # the secure page finds the duplicate by the new key's index
        with pytest.raises(FormErrors, match="phone") as refused:
            bot.add_candidate(CASEY, "ALZ", name=NAME, phone=E164, dob=DOB, state="MA")
        assert "Already a candidate: ALZ-0001" in refused.value.errors["phone"]
    else:
        dup = submit(bot, CASEY, bot.open_modal(CASEY), new_candidate())
        assert "Already on file as ALZ-0001" in str(dup.json()["errors"])


def test_rotation_refuses_when_a_key_is_missing(bot: Bot, monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    submit(bot, CASEY, bot.open_modal(CASEY), new_candidate())
    code, _ = rotate(monkeypatch, tmp_path, bot.ctx.settings.database_url, NEW_KEY)
    assert code == 1
    assert "put the old key back" in capsys.readouterr().err
    with bot.db.session() as s:
        assert PHICipher([ENCRYPTION_KEY]).decrypt(s.scalars(select(Candidate)).one().name_enc) == NAME
