"""Story: every durable Slack message (a job's DM, a digest, a card, an alert) is queued through
the one outbox API in bot/outbox.py, in the same transaction as the change it announces. Only a
listener's answer to the user who acted (ephemeral reply, modal open/update, App Home) goes
straight to Slack, and only from handlers/."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import select

from bot import outbox
from storage.models import OutboxMessage
from tests.conftest import Bot

ROOT = Path(__file__).resolve().parent.parent
OUTBOX_API = Path("bot/outbox.py")
DISPATCHER = Path("integrations/slack_outbox.py")  # delivers the rows; it is the one sender
# Web API methods that leave a message in Slack: only the outbox dispatcher calls them
DURABLE = {"chat_postMessage", "chat_update", "chat_scheduleMessage", "chat_meMessage",
           "files_upload", "files_upload_v2", "api_call"}
# what a listener may answer with, to the user who acted
LISTENER_REPLIES = {"chat_postEphemeral", "views_open", "views_update", "views_push",
                    "views_publish", "conversations_open"}
# the DM fallback of an ephemeral reply (when the user acted outside a channel the bot is in)
EPHEMERAL_DM_FALLBACK = Path("handlers/common.py")


def product_modules() -> Iterator[tuple[Path, ast.Module]]:
    """Every product module (packages at the top of the project, not tests, benches or the
    Slack/Graph stand-ins, which implement the API rather than call it)."""
    for pkg in sorted(p.parent for p in ROOT.glob("*/__init__.py")):
        if pkg.name in ("tests", "bench", "storage"):
            continue
        for path in sorted(pkg.rglob("*.py")):
            rel = path.relative_to(ROOT)
            if "standin" in str(rel) or ".venv" in rel.parts:
                continue
            yield rel, ast.parse(path.read_text(encoding="utf-8"), filename=str(rel))


def outbox_repo_names(tree: ast.Module) -> set[str]:
    """Names under which a module imported storage.repositories.outbox."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "storage.repositories":
            names |= {a.asname or a.name for a in node.names if a.name == "outbox"}
        elif isinstance(node, ast.ImportFrom) and node.module == "storage.repositories.outbox":
            names |= {a.asname or a.name for a in node.names
                      if a.name in ("enqueue", "enqueue_many")}
        elif isinstance(node, ast.Import):
            names |= {a.asname or a.name for a in node.names
                      if a.name == "storage.repositories.outbox"}
    return names


def test_nothing_but_bot_outbox_writes_outbox_rows() -> None:
    offenders = []
    for rel, tree in product_modules():
        if rel in (OUTBOX_API, DISPATCHER):
            continue
        names = outbox_repo_names(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            f = node.func
            direct = isinstance(f, ast.Name) and f.id in names
            via_module = (isinstance(f, ast.Attribute) and f.attr in ("enqueue", "enqueue_many")
                          and isinstance(f.value, ast.Name) and f.value.id in names)
            via_path = (isinstance(f, ast.Attribute) and f.attr in ("enqueue", "enqueue_many")
                        and ast.unparse(f.value).endswith("repositories.outbox"))
            if direct or via_module or via_path:
                offenders.append(f"{rel}:{node.lineno} {ast.unparse(f)}")
    assert not offenders, ("queue Slack messages with bot.outbox (post, post_many, update, "
                           f"upload_file), not the repository: {offenders}")


def test_only_the_dispatcher_posts_and_only_listeners_reply_directly() -> None:
    offenders = []
    for rel, tree in product_modules():
        if rel == DISPATCHER:
            continue
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            method = node.func.attr
            if method == "chat_postMessage" and rel == EPHEMERAL_DM_FALLBACK:
                continue
            # Listeners answer the person in front of them: Slack listeners (handlers/) and the
            # secure page, which updates the log-call modal that sent the person there.
            listener = rel.parts[0] in ("handlers", "pages")
            if method in DURABLE or (method in LISTENER_REPLIES and not listener):
                offenders.append(f"{rel}:{node.lineno} {method}")
    assert not offenders, f"send through bot.outbox instead: {offenders}"


def test_a_job_batch_queued_twice_is_sent_once(bot: Bot) -> None:
    batch = [outbox.Message(key="guard:1", kind="lead_assigned", channel="U0CASEY", text="one",
                            study_key="ALZ"),
             outbox.Message(key="guard:2", kind="callback_reminder", channel="U0CASEY", text="two",
                            blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "two"}}],
                            thread_of="guard:1")]
    with bot.db.session() as s:
        assert outbox.post_many(bot.ctx, s, batch) == 2
    with bot.db.session() as s:
        assert outbox.post_many(bot.ctx, s, batch) == 0
        rows = {r.idempotency_key: r for r in s.scalars(
            select(OutboxMessage).where(OutboxMessage.idempotency_key.like("guard:%")))}
    assert set(rows) == {"guard:1", "guard:2"}
    assert rows["guard:1"].payload == {"text": "one"} and rows["guard:1"].study_key == "ALZ"
    assert rows["guard:2"].payload["blocks"][0]["type"] == "section"
    assert rows["guard:2"].parent_key == "guard:1" and rows["guard:2"].method == "chat.postMessage"


def test_the_domain_and_handlers_leave_sql_to_storage() -> None:
    """bot/, handlers/, the secure page (pages/), the composition root (app/) and the sandbox
    ask storage/repositories for data; they build no query themselves."""
    allowed = {"Session", "SQLAlchemyError", "StatementError"}
    offenders = []
    for rel, tree in product_modules():
        if rel.parts[0] not in ("bot", "handlers", "pages", "app", "sandbox"):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
                offenders += [f"{rel}:{node.lineno} {a.name}" for a in node.names
                              if a.name not in allowed]
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("execute", "scalar", "scalars", "query", "add", "flush")
                    and ast.unparse(node.func.value).endswith("session")):
                offenders.append(f"{rel}:{node.lineno} {ast.unparse(node.func)}")
    assert not offenders, f"move these into a storage/repositories function: {offenders}"


def test_each_stored_value_list_is_written_once() -> None:
    """States, statuses, outcomes, strategies… are spelled out in storage/vocabulary.py only."""
    from storage import vocabulary

    lists = {name: frozenset(value) for name, value in vars(vocabulary).items()
             if name.isupper() and isinstance(value, tuple)}
    offenders = []
    for rel, tree in [*product_modules(), *storage_modules()]:
        if rel == Path("storage/vocabulary.py") or "migrations" in rel.parts:
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Tuple, ast.List, ast.Set)) and node.elts and all(
                    isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts):
                found = frozenset(e.value for e in node.elts)  # type: ignore[attr-defined]
                offenders += [f"{rel}:{node.lineno} {name}" for name, values in lists.items()
                              if found == values]
    assert not offenders, f"import these from storage.vocabulary: {offenders}"


def storage_modules() -> Iterator[tuple[Path, ast.Module]]:
    for path in sorted((ROOT / "storage").rglob("*.py")):
        rel = path.relative_to(ROOT)
        yield rel, ast.parse(path.read_text(encoding="utf-8"), filename=str(rel))
