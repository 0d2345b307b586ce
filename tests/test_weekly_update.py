"""Story: every Monday 09:00 (study time, configurable) the study channel gets the weekly
update for sponsors and sites: the funnel for the study and per site with the conversion at
each step, median days from first call to referral and from referral to visit, callbacks on
time — as text, plus a funnel chart uploaded as a PNG through Slack's upload flow."""

from __future__ import annotations

from tests.conftest import Bot

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CHANNEL = "C0ALZ0001"


def test_a_file_queued_in_the_outbox_is_uploaded_once_through_slacks_upload_flow(bot: Bot) -> None:
    from bot.outbox import upload_file

    data = PNG_MAGIC + b"\x00" * 100
    for _ in range(2):  # the same key twice: queued once
        with bot.db.session() as s:
            upload_file(bot.ctx, s, key="test:file:1", kind="weekly_chart", channel=CHANNEL,
                        filename="funnel.png", data=data, title="Funnel",
                        initial_comment="ALZ funnel", study_key="ALZ")
    bot.deliver()
    assert [c.method for c in bot.standin.calls] == ["files.getUploadURLExternal",
                                                     "files.completeUploadExternal"]
    [msg] = bot.standin.messages(CHANNEL)
    assert msg["text"] == "ALZ funnel"
    assert msg["files"][0]["title"] == "Funnel"
    [uploaded] = bot.standin.uploaded_files
    assert uploaded["data"] == data
