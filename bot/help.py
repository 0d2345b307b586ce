"""The /prescreen help card."""

from __future__ import annotations

from collections.abc import Iterable

from bot import blocks as bk


def help_blocks(entries: Iterable[tuple[str, str]], intro: str | None = None) -> list[bk.Block]:
    lines = [f"`{usage}` — {summary}" for usage, summary in entries]
    out: list[bk.Block] = []
    if intro:
        out.append(bk.section(intro))
    out.append(bk.section("*prescreen-bot commands*\n" + "\n".join(lines), block_id="help"))
    out.append(bk.context("Patient details never appear in channels: use reference codes like ALZ-0042."))
    return out


def help_text(entries: Iterable[tuple[str, str]]) -> str:
    return "prescreen-bot commands: " + "; ".join(u for u, _ in entries)
