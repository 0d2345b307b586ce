"""The Slack stand-in answers the real slack_sdk WebClient the way Slack documents, and the
sender signs requests the way Slack does, so tests built on them can catch real mistakes."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import pytest
import requests
from slack_bolt import Ack, App, BoltRequest, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier

from sandbox.slack_standin import SlackSender, SlackStandin, state_value

TOKEN = "xoxb-standin-test"
SECRET = "standin-signing-secret"
TEAM = "T0STANDIN"
COORD, LEAD, OUTSIDER = "U0COORD01", "U0LEAD001", "U0OUTSIDE"
CHANNEL = "C0ALZ0001"


class FakeClock:
    def __init__(self, start: float = 1_732_330_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def api(clock: FakeClock) -> Iterator[SlackStandin]:
    with SlackStandin(bot_token=TOKEN, team_id=TEAM, clock=clock).start() as standin:
        standin.add_user(COORD, "casey", email="casey@example.org", tz="America/Chicago")
        standin.add_user(LEAD, "lee", email="lee@example.org")
        standin.add_user(OUTSIDER, "robin")
        standin.add_channel(CHANNEL, "alz-prescreen", members=[COORD, LEAD])
        standin.add_channel("C0ARCHIVE", "old", members=[COORD], archived=True)
        standin.add_channel("C0NOBOT01", "no-bot", members=[COORD], bot_member=False)
        yield standin


@pytest.fixture
def client(api: SlackStandin) -> WebClient:
    return WebClient(token=TOKEN, base_url=api.url)


def error_of(call: Any) -> str:
    with pytest.raises(SlackApiError) as info:
        call()
    return str(info.value.response["error"])


def section(text: str, block_id: str | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "section", "text": {"type": "mrkdwn", "text": text}}
    if block_id:
        block["block_id"] = block_id
    return block


def modal(title: str = "Log a call", blocks: list[dict[str, Any]] | None = None,
          **extra: Any) -> dict[str, Any]:
    view: dict[str, Any] = {"type": "modal", "title": {"type": "plain_text", "text": title},
                            "blocks": blocks if blocks is not None else [section("hello")]}
    view.update(extra)
    return view


def text_input(block_id: str, action_id: str, optional: bool = False) -> dict[str, Any]:
    return {"type": "input", "block_id": block_id, "optional": optional,
            "label": {"type": "plain_text", "text": block_id},
            "element": {"type": "plain_text_input", "action_id": action_id}}


# ------------------------------------------------------------------ basics and auth


def test_url_is_a_webclient_base_url(api: SlackStandin) -> None:
    assert api.url.startswith("http://127.0.0.1:")
    assert api.url.endswith("/api/")


def test_auth_test_has_slacks_shape(client: WebClient) -> None:
    data = client.auth_test().data
    assert isinstance(data, dict)
    assert data["ok"] is True
    assert data["team_id"] == TEAM
    assert data["user_id"].startswith("U")
    assert data["bot_id"].startswith("B")
    assert data["url"].startswith("https://")


def test_missing_and_wrong_tokens_are_refused_with_http_200(api: SlackStandin) -> None:
    no_token = requests.post(api.url + "auth.test", timeout=5)
    assert no_token.status_code == 200
    assert no_token.json() == {"ok": False, "error": "not_authed"}
    wrong = requests.post(api.url + "auth.test", headers={"Authorization": "Bearer xoxb-nope"},
                          timeout=5)
    assert wrong.json() == {"ok": False, "error": "invalid_auth"}
    form = requests.post(api.url + "auth.test", data={"token": TOKEN}, timeout=5)
    assert form.json()["ok"] is True
    json_body_token = requests.post(api.url + "auth.test", json={"token": TOKEN}, timeout=5)
    assert json_body_token.json()["error"] == "not_authed"


def test_unknown_method(client: WebClient) -> None:
    assert error_of(lambda: client.api_call("chat.frobnicate")) == "unknown_method"


@pytest.mark.parametrize("encoding", ["form", "json", "multipart", "query"])
def test_every_body_encoding_is_understood_and_json_fields_decoded(api: SlackStandin,
                                                                    encoding: str) -> None:
    blocks = [section("*hello*")]
    auth = {"Authorization": f"Bearer {TOKEN}"}
    url = api.url + "chat.postMessage"
    fields = {"channel": CHANNEL, "text": "fallback", "blocks": json.dumps(blocks)}
    if encoding == "form":
        resp = requests.post(url, data=fields, headers=auth, timeout=5)
    elif encoding == "json":
        resp = requests.post(url, json={**fields, "blocks": blocks}, headers=auth, timeout=5)
    elif encoding == "multipart":
        resp = requests.post(url, files={k: (None, v) for k, v in fields.items()},
                             headers=auth, timeout=5)
    else:
        resp = requests.get(url, params=fields, headers=auth, timeout=5)
    assert resp.json()["ok"] is True, resp.json()
    [call] = api.calls_to("chat.postMessage")
    assert call.args["blocks"] == blocks
    assert api.messages(CHANNEL)[0]["blocks"][0]["text"]["text"] == "*hello*"


# ------------------------------------------------------------------ chat.postMessage


def test_post_message_shape_and_increasing_unique_ts(client: WebClient,
                                                     api: SlackStandin) -> None:
    first = client.chat_postMessage(channel=CHANNEL, text="one")
    second = client.chat_postMessage(channel=CHANNEL, text="two")
    assert first["channel"] == CHANNEL
    assert first["message"]["text"] == "one"
    assert first["message"]["bot_id"] == client.auth_test()["bot_id"]
    sec, _, frac = str(first["ts"]).partition(".")
    assert len(sec) == 10
    assert len(frac) == 6
    assert float(second["ts"]) > float(first["ts"])
    assert [m["text"] for m in api.messages(CHANNEL)] == ["one", "two"]
    assert api.messages(CHANNEL)[0]["user"] == first["message"]["user"]


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing:UserWarning")
@pytest.mark.parametrize(("channel", "kwargs", "error"), [
    ("C0MISSING", {"text": "x"}, "channel_not_found"),
    ("C0NOBOT01", {"text": "x"}, "not_in_channel"),
    ("C0ARCHIVE", {"text": "x"}, "is_archived"),
    (CHANNEL, {}, "no_text"),
    (CHANNEL, {"text": "x" * 40_001}, "msg_too_long"),
])
def test_post_message_errors(client: WebClient, api: SlackStandin, channel: str,
                             kwargs: dict[str, Any], error: str) -> None:
    assert error_of(lambda: client.chat_postMessage(channel=channel, **kwargs)) == error
    assert api.messages() == []


def test_message_block_limit_is_50(client: WebClient) -> None:
    fifty = [section(f"row {i}") for i in range(50)]
    assert client.chat_postMessage(channel=CHANNEL, text="ok", blocks=fifty)["ok"] is True
    with pytest.raises(SlackApiError) as info:
        client.chat_postMessage(channel=CHANNEL, text="x", blocks=[*fifty, section("51")])
    body = info.value.response.data
    assert isinstance(body, dict)
    assert body["error"] == "invalid_blocks"
    assert body["response_metadata"]["messages"] == [
        "[ERROR] no more than 50 items allowed [json-pointer:/blocks]"]


def test_section_text_limit_is_3000_characters(client: WebClient) -> None:
    assert client.chat_postMessage(channel=CHANNEL, text="ok",
                                   blocks=[section("a" * 3000)])["ok"] is True
    with pytest.raises(SlackApiError) as info:
        client.chat_postMessage(channel=CHANNEL, text="x", blocks=[section("a" * 3001)])
    assert info.value.response["error"] == "invalid_blocks"
    assert info.value.response["response_metadata"]["messages"] == [
        "[ERROR] must be less than 3001 characters [json-pointer:/blocks/0/text/text]"]


@pytest.mark.parametrize("blocks", [
    [{"text": {"type": "mrkdwn", "text": "no type"}}],
    [{"type": "section"}],
    [{"type": "header", "text": {"type": "mrkdwn", "text": "headers are plain_text"}}],
    [{"type": "actions", "elements": [{"type": "button", "action_id": "a",
                                       "text": {"type": "plain_text", "text": "Go"},
                                       "value": "v" * 2001}]}],
    [section("one", "same"), section("two", "same")],
])
def test_malformed_blocks_are_invalid_blocks(client: WebClient,
                                             blocks: list[dict[str, Any]]) -> None:
    assert error_of(lambda: client.chat_postMessage(channel=CHANNEL, text="x",
                                                    blocks=blocks)) == "invalid_blocks"


def test_thread_replies_attach_to_the_parent(client: WebClient, api: SlackStandin) -> None:
    parent = client.chat_postMessage(channel=CHANNEL, text="parent")["ts"]
    reply = client.chat_postMessage(channel=CHANNEL, text="reply", thread_ts=parent)
    nested = client.chat_postMessage(channel=CHANNEL, text="nested", thread_ts=reply["ts"])
    assert reply["message"]["thread_ts"] == parent
    assert nested["message"]["thread_ts"] == parent
    replies = api.thread(CHANNEL, parent)
    assert [m["text"] for m in replies] == ["parent", "reply", "nested"]
    root = api.messages(CHANNEL)[0]
    assert root["reply_count"] == 2
    assert root["latest_reply"] == nested["ts"]


def test_posting_to_a_user_id_opens_a_stable_dm(client: WebClient, api: SlackStandin) -> None:
    sent = client.chat_postMessage(channel=COORD, text="reminder")
    assert str(sent["channel"]).startswith("D")
    opened = client.conversations_open(users=COORD)
    assert opened["channel"]["id"] == sent["channel"]
    assert opened.get("already_open") is True
    assert api.messages(str(sent["channel"]))[0]["text"] == "reminder"
    assert error_of(lambda: client.conversations_open(users="U0NOBODY")) == "user_not_found"


# ------------------------------------------------------------------ chat.update, ephemerals


def test_update_changes_the_stored_message(client: WebClient, api: SlackStandin) -> None:
    ts = str(client.chat_postMessage(channel=CHANNEL, text="pending")["ts"])
    updated = client.chat_update(channel=CHANNEL, ts=ts, text="approved",
                                 blocks=[section("*Approved*")])
    assert updated["ts"] == ts
    assert updated["text"] == "approved"
    assert updated["message"]["blocks"][0]["text"]["text"] == "*Approved*"
    [msg] = api.messages(CHANNEL)
    assert msg["text"] == "approved"
    assert "edited" in msg
    client.chat_update(channel=CHANNEL, ts=ts, text="text only")
    [msg] = api.messages(CHANNEL)
    assert msg["text"] == "text only"
    assert msg["blocks"][0]["text"]["text"] == "*Approved*"


def test_update_errors(client: WebClient, api: SlackStandin) -> None:
    ts = str(client.chat_postMessage(channel=CHANNEL, text="mine")["ts"])
    human = api.post_as_user(CHANNEL, COORD, "a person's message")
    assert error_of(lambda: client.chat_update(channel=CHANNEL, ts="1.000001",
                                               text="x")) == "message_not_found"
    assert error_of(lambda: client.chat_update(channel=CHANNEL, ts=human,
                                               text="x")) == "cant_update_message"
    too_many = [section(f"b{i}") for i in range(51)]
    assert error_of(lambda: client.chat_update(channel=CHANNEL, ts=ts, text="b",
                                               blocks=too_many)) == "invalid_blocks"
    assert error_of(lambda: client.chat_update(channel="C0NOPE", ts=ts,
                                               text="x")) == "channel_not_found"
    assert [m["text"] for m in api.messages(CHANNEL)] == ["mine", "a person's message"]


def test_post_ephemeral(client: WebClient, api: SlackStandin) -> None:
    sent = client.chat_postEphemeral(channel=CHANNEL, user=COORD, text="only you")
    assert sent["message_ts"]
    assert [e["text"] for e in api.ephemerals(COORD)] == ["only you"]
    assert api.ephemerals(LEAD) == []
    assert api.messages(CHANNEL) == []
    assert error_of(lambda: client.chat_postEphemeral(channel=CHANNEL, user=OUTSIDER,
                                                      text="x")) == "user_not_in_channel"
    assert error_of(lambda: client.chat_postEphemeral(channel="C0NOPE", user=COORD,
                                                      text="x")) == "channel_not_found"


# ------------------------------------------------------------------ message metadata, history


TASK = {"event_type": "task_created", "event_payload": {"id": "TK-1", "n": 2, "done": False}}


def post_form(api: SlackStandin, method: str, **fields: str) -> dict[str, Any]:
    """A form-encoded call, as Slack's docs show it (JSON fields as URL-encoded strings)."""
    resp = requests.post(api.url + method, data=fields, timeout=5,
                         headers={"Authorization": f"Bearer {TOKEN}"})
    return dict(resp.json())


def test_metadata_is_taken_as_a_json_object_or_its_string(client: WebClient,
                                                         api: SlackStandin) -> None:
    as_object = client.chat_postMessage(channel=CHANNEL, text="one", metadata=TASK)
    as_string = post_form(api, "chat.postMessage", channel=CHANNEL, text="two",
                          metadata=json.dumps(TASK))
    assert as_object["ok"] is True and as_string["ok"] is True, as_string
    history = client.conversations_history(channel=CHANNEL, include_all_metadata=True)
    assert [(m["text"], m["metadata"]) for m in history["messages"]] == [("two", TASK),
                                                                          ("one", TASK)]


@pytest.mark.parametrize(("metadata", "error"), [
    ("{not json", "invalid_metadata_format"),
    ('["event_type", "event_payload"]', "invalid_metadata_format"),
    ('"task_created"', "invalid_metadata_format"),
    ('{"event_type": "task_created"}', "invalid_metadata_schema"),
    ('{"event_payload": {"id": 1}}', "invalid_metadata_schema"),
    ('{"event_type": "", "event_payload": {}}', "invalid_metadata_schema"),
    ('{"event_type": 7, "event_payload": {}}', "invalid_metadata_schema"),
    ('{"event_type": "task_created", "event_payload": [1, 2]}', "invalid_metadata_schema"),
    ('{"event_type": "task_created", "event_payload": "id=1"}', "invalid_metadata_schema"),
])
def test_malformed_metadata_is_refused(client: WebClient, api: SlackStandin, metadata: str,
                                       error: str) -> None:
    answer = post_form(api, "chat.postMessage", channel=CHANNEL, text="x", metadata=metadata)
    assert answer == {"ok": False, "error": error}
    as_json = requests.post(api.url + "chat.postMessage", timeout=5,
                            headers={"Authorization": f"Bearer {TOKEN}"},
                            json={"channel": CHANNEL, "text": "x",
                                  "metadata": json.loads(metadata) if error.endswith("schema")
                                  else metadata}).json()
    assert as_json == {"ok": False, "error": error}
    assert api.messages() == []
    ts = str(client.chat_postMessage(channel=CHANNEL, text="kept", metadata=TASK)["ts"])
    assert post_form(api, "chat.update", channel=CHANNEL, ts=ts, text="changed",
                     metadata=metadata)["error"] == error
    [msg] = api.messages(CHANNEL)
    assert (msg["text"], msg["metadata"]) == ("kept", TASK)


def test_update_keeps_metadata_unless_given(client: WebClient, api: SlackStandin) -> None:
    ts = str(client.chat_postMessage(channel=CHANNEL, text="a", metadata=TASK)["ts"])
    client.chat_update(channel=CHANNEL, ts=ts, text="b")
    assert api.messages(CHANNEL)[0]["metadata"] == TASK
    other = {"event_type": "task_closed", "event_payload": {"id": "TK-1"}}
    client.chat_update(channel=CHANNEL, ts=ts, text="c", metadata=other)
    assert api.messages(CHANNEL)[0]["metadata"] == other


def test_history_shows_metadata_only_with_include_all_metadata(client: WebClient) -> None:
    client.chat_postMessage(channel=CHANNEL, text="tagged", metadata=TASK)
    plain = client.conversations_history(channel=CHANNEL)
    assert "metadata" not in plain["messages"][0]
    assert plain["messages"][0]["text"] == "tagged"
    off = client.conversations_history(channel=CHANNEL, include_all_metadata=False)
    assert "metadata" not in off["messages"][0]
    on = client.conversations_history(channel=CHANNEL, include_all_metadata=True)
    assert on["messages"][0]["metadata"] == TASK


def test_history_is_newest_first_in_a_window_with_cursor_pages(client: WebClient,
                                                               api: SlackStandin,
                                                               clock: FakeClock) -> None:
    stamps = []
    for i in range(5):
        stamps.append(str(client.chat_postMessage(channel=CHANNEL, text=f"m{i}")["ts"]))
        clock.advance(1)
    reply = client.chat_postMessage(channel=CHANNEL, text="in thread", thread_ts=stamps[0])
    client.chat_postMessage(channel=CHANNEL, text="broadcast", thread_ts=stamps[0],
                            reply_broadcast=True)
    whole = client.conversations_history(channel=CHANNEL)
    assert [m["text"] for m in whole["messages"]] == ["broadcast", "m4", "m3", "m2", "m1", "m0"]
    assert whole["has_more"] is False and whole["pin_count"] == 0
    assert "next_cursor" not in (whole.get("response_metadata") or {})
    assert reply["ts"] not in {m["ts"] for m in whole["messages"]}
    assert whole["messages"][-1]["reply_count"] == 2

    def texts(**kw: Any) -> list[str]:
        return [m["text"] for m in client.conversations_history(channel=CHANNEL, **kw)["messages"]]

    assert texts(oldest=stamps[1], latest=stamps[3]) == ["m2"]
    assert texts(oldest=stamps[1], latest=stamps[3], inclusive=True) == ["m3", "m2", "m1"]
    assert texts(latest=stamps[1]) == ["m0"]
    assert texts(oldest=stamps[3], limit=1) == ["broadcast"]

    first = client.conversations_history(channel=CHANNEL, oldest=stamps[0], latest=stamps[4],
                                         inclusive=True, limit=2)
    assert [m["text"] for m in first["messages"]] == ["m4", "m3"]
    assert first["has_more"] is True
    cursor = first["response_metadata"]["next_cursor"]
    second = client.conversations_history(channel=CHANNEL, oldest=stamps[0], latest=stamps[4],
                                          inclusive=True, limit=2, cursor=cursor)
    assert [m["text"] for m in second["messages"]] == ["m2", "m1"]
    last = client.conversations_history(channel=CHANNEL, oldest=stamps[0], latest=stamps[4],
                                        inclusive=True, limit=2,
                                        cursor=second["response_metadata"]["next_cursor"])
    assert [m["text"] for m in last["messages"]] == ["m0"]
    assert last["has_more"] is False


def test_history_errors(client: WebClient, api: SlackStandin) -> None:
    api.add_channel("G0PRIVATE", "private", members=[COORD], is_private=True, bot_member=False)
    client.chat_postMessage(channel=CHANNEL, text="x")
    for channel, error in [("C0MISSING", "channel_not_found"), (COORD, "channel_not_found"),
                           ("alz-prescreen", "channel_not_found"), ("", "channel_not_found"),
                           ("C0NOBOT01", "not_in_channel"), ("G0PRIVATE", "channel_not_found")]:
        assert error_of(lambda c=channel: client.conversations_history(channel=c)) == error
    assert error_of(lambda: client.conversations_history(channel=CHANNEL,
                                                         oldest="yesterday")) == "invalid_ts_oldest"
    assert error_of(lambda: client.conversations_history(channel=CHANNEL,
                                                         latest="later")) == "invalid_ts_latest"
    assert error_of(lambda: client.conversations_history(channel=CHANNEL,
                                                         cursor="not-a-cursor")) == "invalid_cursor"
    archived = client.conversations_history(channel="C0ARCHIVE")
    assert archived["messages"] == []


def test_dm_history_needs_the_im_channel_id(client: WebClient) -> None:
    sent = client.chat_postMessage(channel=COORD, text="reminder", metadata=TASK)
    assert error_of(lambda: client.conversations_history(channel=COORD)) == "channel_not_found"
    im = client.conversations_open(users=COORD)["channel"]["id"]
    history = client.conversations_history(channel=im, include_all_metadata=True)
    assert [(m["ts"], m["metadata"]) for m in history["messages"]] == [(sent["ts"], TASK)]


def test_replies_list_the_thread_oldest_first(client: WebClient, api: SlackStandin,
                                              clock: FakeClock) -> None:
    parent = str(client.chat_postMessage(channel=CHANNEL, text="card")["ts"])
    clock.advance(1)
    first = str(client.chat_postMessage(channel=CHANNEL, text="r1", thread_ts=parent,
                                        metadata=TASK)["ts"])
    clock.advance(1)
    client.chat_postMessage(channel=CHANNEL, text="r2", thread_ts=parent)
    client.chat_postMessage(channel=CHANNEL, text="elsewhere")
    thread = client.conversations_replies(channel=CHANNEL, ts=parent)
    assert [m["text"] for m in thread["messages"]] == ["card", "r1", "r2"]
    assert "metadata" not in thread["messages"][1]
    assert client.conversations_replies(channel=CHANNEL, ts=first)["messages"][0]["ts"] == parent
    tagged = client.conversations_replies(channel=CHANNEL, ts=parent, oldest=first,
                                          inclusive=True, include_all_metadata=True)
    assert [(m["text"], m.get("metadata")) for m in tagged["messages"]] == [("r1", TASK),
                                                                             ("r2", None)]
    paged = client.conversations_replies(channel=CHANNEL, ts=parent, limit=2)
    assert [m["text"] for m in paged["messages"]] == ["card", "r1"] and paged["has_more"]
    rest = client.conversations_replies(channel=CHANNEL, ts=parent, limit=2,
                                        cursor=paged["response_metadata"]["next_cursor"])
    assert [m["text"] for m in rest["messages"]] == ["r2"] and rest["has_more"] is False
    assert error_of(lambda: client.conversations_replies(channel=CHANNEL,
                                                         ts="1.000001")) == "thread_not_found"
    assert error_of(lambda: client.conversations_replies(channel="C0NOBOT01",
                                                         ts=parent)) == "not_in_channel"


def test_intercept_runs_after_the_message_is_stored_and_before_the_answer(
        client: WebClient, api: SlackStandin) -> None:
    seen: list[list[str]] = []
    api.intercept("chat.postMessage", lambda args: seen.append(
        [m["text"] for m in api.messages(CHANNEL)]), when=lambda a: a.get("text") == "second")
    client.chat_postMessage(channel=CHANNEL, text="first")
    assert seen == []
    assert client.chat_postMessage(channel=CHANNEL, text="second")["ok"] is True
    assert seen == [["first", "second"]]
    client.chat_postMessage(channel=CHANNEL, text="second")
    assert len(seen) == 1  # once


def test_intercepted_calls_can_lose_their_answer_or_never_arrive(api: SlackStandin) -> None:
    client = WebClient(token=TOKEN, base_url=api.url, retry_handlers=[])
    api.intercept("chat.postMessage", answer=False)
    with pytest.raises(Exception):  # noqa: B017 - the connection closes without an answer
        client.chat_postMessage(channel=CHANNEL, text="done, answer lost")
    assert [m["text"] for m in api.messages(CHANNEL)] == ["done, answer lost"]
    arrived: list[dict[str, Any]] = []
    api.intercept("chat.postMessage", arrived.append, carry_out=False)
    with pytest.raises(Exception):  # noqa: B017
        client.chat_postMessage(channel=CHANNEL, text="lost in transit")
    assert [c["text"] for c in arrived] == ["lost in transit"]
    assert [m["text"] for m in api.messages(CHANNEL)] == ["done, answer lost"]
    assert [c.args["text"] for c in api.calls_to("chat.postMessage")] == ["done, answer lost"]
    assert client.chat_postMessage(channel=CHANNEL, text="next")["ok"] is True

# ------------------------------------------------------------------ views


def test_views_open_shape(client: WebClient, api: SlackStandin) -> None:
    trigger = api.issue_trigger_id(COORD)
    view = client.views_open(trigger_id=trigger, view=modal(
        callback_id="log_call", private_metadata='{"study": 1}',
        submit={"type": "plain_text", "text": "Save"},
        blocks=[text_input("notes", "notes_input")]))["view"]
    assert view["id"].startswith("V")
    assert view["root_view_id"] == view["id"]
    assert view["previous_view_id"] is None
    assert view["callback_id"] == "log_call"
    assert view["private_metadata"] == '{"study": 1}'
    assert view["state"] == {"values": {}}
    assert view["hash"]
    assert view["team_id"] == TEAM
    assert api.open_view(COORD)["id"] == view["id"]  # type: ignore[index]


def test_trigger_ids_expire_after_3_seconds_and_work_once(client: WebClient, api: SlackStandin,
                                                          clock: FakeClock) -> None:
    fresh = api.issue_trigger_id(COORD)
    clock.advance(2.9)
    assert client.views_open(trigger_id=fresh, view=modal())["ok"] is True
    assert error_of(lambda: client.views_open(trigger_id=fresh,
                                              view=modal())) == "exchanged_trigger_id"
    stale = api.issue_trigger_id(COORD)
    clock.advance(3.1)
    assert error_of(lambda: client.views_open(trigger_id=stale,
                                              view=modal())) == "expired_trigger_id"
    assert error_of(lambda: client.views_open(trigger_id="12345.98765.abcd",
                                              view=modal())) == "invalid_trigger_id"


@pytest.mark.parametrize(("view", "pointer"), [
    (modal(title="x" * 25), "/view/title/text"),
    (modal(submit={"type": "plain_text", "text": "s" * 25}), "/view/submit/text"),
    (modal(close={"type": "plain_text", "text": "c" * 25}), "/view/close/text"),
    (modal(blocks=[section(f"{i}") for i in range(101)]), "/view/blocks"),
    (modal(private_metadata="m" * 3001), "/view/private_metadata"),
    (modal(callback_id="c" * 256), "/view/callback_id"),
    (modal(blocks=[section("t" * 3001)]), "/view/blocks/0/text/text"),
    (modal(blocks=[text_input("a", "b")]), "/view/submit"),
])
def test_modal_limits_are_invalid_arguments(client: WebClient, api: SlackStandin,
                                            view: dict[str, Any], pointer: str) -> None:
    with pytest.raises(SlackApiError) as info:
        client.views_open(trigger_id=api.issue_trigger_id(COORD), view=view)
    assert info.value.response["error"] == "invalid_arguments"
    messages = info.value.response["response_metadata"]["messages"]
    assert any(m.endswith(f"[json-pointer:{pointer}]") for m in messages), messages


def test_modal_limits_allow_the_maximum(client: WebClient, api: SlackStandin) -> None:
    view = modal(title="t" * 24, private_metadata="m" * 3000, callback_id="c" * 255,
                 submit={"type": "plain_text", "text": "s" * 24},
                 blocks=[section(f"{i}") for i in range(100)])
    assert client.views_open(trigger_id=api.issue_trigger_id(COORD), view=view)["ok"] is True


def test_views_update_by_id_or_external_id_with_hash(client: WebClient,
                                                     api: SlackStandin) -> None:
    opened = client.views_open(trigger_id=api.issue_trigger_id(COORD),
                               view=modal(title="Loading…", external_id="call-42"))["view"]
    by_id = client.views_update(view_id=opened["id"], hash=opened["hash"],
                                view=modal(title="Ready", external_id="call-42"))["view"]
    assert by_id["id"] == opened["id"]
    assert by_id["hash"] != opened["hash"]
    assert error_of(lambda: client.views_update(view_id=opened["id"], hash=opened["hash"],
                                                view=modal())) == "hash_conflict"
    by_ext = client.views_update(external_id="call-42", view=modal(title="Again"))["view"]
    assert by_ext["id"] == opened["id"]
    assert api.view(opened["id"])["title"]["text"] == "Again"
    assert error_of(lambda: client.views_update(view_id="V0NOPE", view=modal())) == "not_found"
    assert error_of(lambda: client.views_update(external_id="nope", view=modal())) == "not_found"


def test_views_push_allows_three_views(client: WebClient, api: SlackStandin) -> None:
    root = client.views_open(trigger_id=api.issue_trigger_id(COORD), view=modal())["view"]
    second = client.views_push(trigger_id=api.issue_trigger_id(COORD, root["id"]),
                               view=modal(title="Second"))["view"]
    assert second["root_view_id"] == root["id"]
    assert second["previous_view_id"] == root["id"]
    client.views_push(trigger_id=api.issue_trigger_id(COORD, second["id"]),
                      view=modal(title="Third"))
    assert len(api.view_stack(COORD)) == 3
    assert error_of(lambda: client.views_push(trigger_id=api.issue_trigger_id(COORD),
                                              view=modal())) == "push_limit_reached"


def test_views_publish_home_tab(client: WebClient, api: SlackStandin) -> None:
    home = {"type": "home", "blocks": [section("Your queue")]}
    first = client.views_publish(user_id=COORD, view=home)["view"]
    again = client.views_publish(user_id=COORD, view={"type": "home",
                                                      "blocks": [section("Empty")]})["view"]
    assert again["id"] == first["id"]
    assert api.home(COORD)["blocks"][0]["text"]["text"] == "Empty"  # type: ignore[index]
    assert api.home(LEAD) is None
    too_many = {"type": "home", "blocks": [section(str(i)) for i in range(101)]}
    assert error_of(lambda: client.views_publish(user_id=COORD,
                                                 view=too_many)) == "invalid_arguments"
    assert error_of(lambda: client.views_publish(user_id=COORD, view=home,
                                                 hash="1.stale")) == "hash_conflict"


# ------------------------------------------------------------------ users


def test_users_info_and_lookup_by_email(client: WebClient) -> None:
    user = client.users_info(user=COORD)["user"]
    assert user["id"] == COORD
    assert user["tz"] == "America/Chicago"
    assert user["tz_offset"] in (-6 * 3600, -5 * 3600)
    assert user["profile"]["email"] == "casey@example.org"
    assert user["real_name"] == "casey"
    assert client.users_lookupByEmail(email="LEE@example.org")["user"]["id"] == LEAD
    assert error_of(lambda: client.users_info(user="U0NOBODY")) == "user_not_found"
    assert error_of(lambda: client.users_lookupByEmail(
        email="nobody@example.org")) == "users_not_found"


# ------------------------------------------------------------------ files


def test_files_upload_v2_flow(client: WebClient, api: SlackStandin) -> None:
    parent = str(client.chat_postMessage(channel=CHANNEL, text="weekly")["ts"])
    result = client.files_upload_v2(channel=CHANNEL, content="week,calls\n47,12\n",
                                    filename="weekly.csv", title="Weekly numbers",
                                    initial_comment="Here is the export", thread_ts=parent)
    assert result["file"]["title"] == "Weekly numbers"
    [uploaded] = api.uploaded_files
    assert uploaded["data"] == b"week,calls\n47,12\n"
    assert uploaded["name"] == "weekly.csv"
    assert uploaded["channel"] == CHANNEL
    assert [c.method for c in api.calls] == ["chat.postMessage", "files.getUploadURLExternal",
                                             "files.completeUploadExternal"]
    shared = api.thread(CHANNEL, parent)[-1]
    assert shared["text"] == "Here is the export"
    assert shared["files"][0]["id"] == uploaded["id"]


def test_files_complete_upload_refuses_unknown_or_unuploaded_files(client: WebClient) -> None:
    ticket = client.files_getUploadURLExternal(filename="a.txt", length=3)
    assert str(ticket["upload_url"]).startswith("http://127.0.0.1:")
    assert error_of(lambda: client.files_completeUploadExternal(
        files=[{"id": ticket["file_id"]}])) == "file_not_found"
    assert error_of(lambda: client.files_completeUploadExternal(
        files=[{"id": "F0NOPE"}])) == "file_not_found"
    upload = requests.post(str(ticket["upload_url"]), data=b"abc", timeout=5)
    assert upload.text == "OK - 3"
    assert error_of(lambda: client.files_completeUploadExternal(
        files=[{"id": ticket["file_id"]}], channel_id="C0NOPE")) == "invalid_channel"


# ------------------------------------------------------------------ faults


def test_rate_limit_answers_429_with_retry_after(client: WebClient, api: SlackStandin) -> None:
    api.rate_limit("chat.postMessage", times=1, retry_after=7)
    with pytest.raises(SlackApiError) as info:
        client.chat_postMessage(channel=CHANNEL, text="x")
    assert info.value.response.status_code == 429
    assert info.value.response["error"] == "ratelimited"
    assert info.value.response.headers["Retry-After"] in ("7", ["7"])
    assert client.chat_postMessage(channel=CHANNEL, text="x")["ok"] is True


def test_retry_handler_rides_out_rate_limits(api: SlackStandin) -> None:
    client = WebClient(token=TOKEN, base_url=api.url,
                       retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=2)])
    api.rate_limit("chat.postMessage", times=2, retry_after=1)
    assert client.chat_postMessage(channel=CHANNEL, text="eventually")["ok"] is True
    assert [c.status for c in api.calls_to("chat.postMessage")] == [429, 429, 200]
    assert [m["text"] for m in api.messages(CHANNEL)] == ["eventually"]


def test_fail_next_injects_errors_for_a_number_of_calls(client: WebClient,
                                                        api: SlackStandin) -> None:
    api.fail_next("chat.update", error="internal_error", times=2)
    ts = str(client.chat_postMessage(channel=CHANNEL, text="a")["ts"])
    assert error_of(lambda: client.chat_update(channel=CHANNEL, ts=ts, text="b")) == \
        "internal_error"
    assert error_of(lambda: client.chat_update(channel=CHANNEL, ts=ts, text="b")) == \
        "internal_error"
    assert client.chat_update(channel=CHANNEL, ts=ts, text="b")["ok"] is True


# ------------------------------------------------------------------ response_url, recordings


def test_response_urls_are_recorded_and_applied(client: WebClient, api: SlackStandin,
                                                clock: FakeClock) -> None:
    ts = str(client.chat_postMessage(channel=CHANNEL, text="card")["ts"])
    url = api.new_response_url(LEAD, CHANNEL, ts)
    assert url.startswith(api.base_url + "/response/")
    assert requests.post(url, json={"text": "Approved", "replace_original": True},
                         timeout=5).status_code == 200
    assert api.messages(CHANNEL)[0]["text"] == "Approved"
    requests.post(url, json={"text": "just you"}, timeout=5)
    assert [e["text"] for e in api.ephemerals(LEAD)] == ["just you"]
    requests.post(url, json={"text": "everyone", "response_type": "in_channel"}, timeout=5)
    requests.post(url, json={"delete_original": True}, timeout=5)
    assert [m["text"] for m in api.messages(CHANNEL)] == ["everyone"]
    assert [r["payload"].get("text") for r in api.responses] == [
        "Approved", "just you", "everyone", None]
    assert requests.post(url, json={"text": "5th"}, timeout=5).status_code == 200
    sixth = requests.post(url, json={"text": "6th"}, timeout=5)
    assert (sixth.status_code, sixth.text) == (404, "used_url")
    late = api.new_response_url(LEAD, CHANNEL)
    clock.advance(31 * 60)
    assert requests.post(late, json={"text": "late"}, timeout=5).text == "expired_url"


def test_all_outgoing_text_covers_every_surface(client: WebClient, api: SlackStandin) -> None:
    client.chat_postMessage(channel=CHANNEL, text="m-1", blocks=[section("block-2")])
    client.chat_postEphemeral(channel=CHANNEL, user=COORD, text="eph-3")
    client.views_open(trigger_id=api.issue_trigger_id(COORD), view=modal(title="view-4"))
    client.views_publish(user_id=COORD, view={"type": "home", "blocks": [section("home-5")]})
    requests.post(api.new_response_url(COORD, CHANNEL), json={"text": "resp-6"}, timeout=5)
    text = api.all_outgoing_text()
    for needle in ("m-1", "block-2", "eph-3", "view-4", "home-5", "resp-6"):
        assert needle in text
    assert "never-sent" not in text


def test_wait_for_polls_until_the_app_has_posted(client: WebClient, api: SlackStandin) -> None:
    timer = threading.Timer(0.2, lambda: client.chat_postMessage(channel=CHANNEL, text="late"))
    timer.start()
    found = api.wait_for(lambda s: [m for m in s.messages(CHANNEL) if m["text"] == "late"],
                         timeout=3)
    assert found[0]["text"] == "late"
    with pytest.raises(AssertionError, match="digest posted"):
        api.wait_for(lambda s: s.messages("C0NOBOT01"), timeout=0.1, message="digest posted")


def test_reset_forgets_state_but_keeps_the_directory(client: WebClient,
                                                     api: SlackStandin) -> None:
    client.chat_postMessage(channel=CHANNEL, text="x")
    api.reset()
    assert api.messages() == []
    assert api.calls == []
    assert client.users_info(user=COORD)["ok"] is True


# ------------------------------------------------------------------ the sender


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]


@dataclass
class Receiver:
    """An app endpoint that records requests and answers with queued bodies."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    answers: list[tuple[int, bytes]] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            rec.received.append(Received(body, dict(self.headers.items())))
            status, answer = rec.answers.pop(0) if rec.answers else (200, b"")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    rec.url = f"http://127.0.0.1:{server.server_address[1]}/slack/events"
    yield rec
    server.shutdown()
    server.server_close()


@pytest.fixture
def sender(receiver: Receiver, api: SlackStandin) -> SlackSender:
    return SlackSender(receiver.url, SECRET, api, team_id=TEAM)


def _form(got: Received) -> dict[str, str]:
    return dict(parse_qsl(got.body.decode()))


def _payload(got: Received) -> dict[str, Any]:
    return dict(json.loads(_form(got)["payload"]))


def _verified(got: Received, secret: str = SECRET) -> bool:
    return SignatureVerifier(secret).is_valid_request(got.body, got.headers)


def test_slash_command_is_signed_and_has_slacks_fields(sender: SlackSender, api: SlackStandin,
                                                       receiver: Receiver,
                                                       clock: FakeClock) -> None:
    sender.slash_command(COORD, text="log", channel_id=CHANNEL)
    [got] = receiver.received
    assert _verified(got)
    assert not _verified(got, "another-secret")
    assert got.headers["Content-Type"] == "application/x-www-form-urlencoded"
    form = _form(got)
    assert {k: form[k] for k in ("team_id", "channel_id", "channel_name", "user_id",
                                 "user_name", "command", "text")} == {
        "team_id": TEAM, "channel_id": CHANNEL, "channel_name": "alz-prescreen",
        "user_id": COORD, "user_name": "casey", "command": "/prescreen", "text": "log"}
    assert form["response_url"].startswith(api.base_url + "/response/")
    client = WebClient(token=TOKEN, base_url=api.url)
    view = client.views_open(trigger_id=form["trigger_id"], view=modal())["view"]
    assert api.view_owner(view["id"]) == COORD


@pytest.mark.parametrize(("opts", "valid"), [
    ({"signing_secret": "not-the-secret"}, False),
    ({"timestamp": int(time.time()) - 6 * 60}, False),
    ({"signature": "v0=deadbeef"}, False),
    ({"retry_num": 1, "retry_reason": "http_timeout"}, True),
])
def test_tampered_requests_fail_verification(sender: SlackSender, receiver: Receiver,
                                             opts: dict[str, Any], valid: bool) -> None:
    sender.slash_command(COORD, text="help", **opts)
    [got] = receiver.received
    assert _verified(got) is valid
    if "retry_num" in opts:
        assert got.headers["X-Slack-Retry-Num"] == "1"
        assert got.headers["X-Slack-Retry-Reason"] == "http_timeout"


def test_unsigned_requests_have_no_slack_headers(sender: SlackSender,
                                                 receiver: Receiver) -> None:
    sender.slash_command(COORD, text="help", unsigned=True)
    [got] = receiver.received
    assert "X-Slack-Signature" not in got.headers
    assert "X-Slack-Request-Timestamp" not in got.headers


def test_slash_command_answer_is_shown_to_the_user(sender: SlackSender, api: SlackStandin,
                                                   receiver: Receiver) -> None:
    receiver.answers.append((200, json.dumps({"response_type": "ephemeral",
                                              "text": "commands: help"}).encode()))
    resp = sender.slash_command(COORD, text="help", channel_id=CHANNEL)
    assert resp.json()["text"] == "commands: help"
    assert [e["text"] for e in api.ephemerals(COORD)] == ["commands: help"]
    assert "commands: help" in api.all_outgoing_text()


def test_click_sends_the_button_on_screen(sender: SlackSender, api: SlackStandin,
                                          receiver: Receiver, client: WebClient) -> None:
    approve = {"type": "button", "action_id": "approve", "value": '{"referral": 7}',
               "text": {"type": "plain_text", "text": "Approve"}, "style": "primary"}
    client.chat_postMessage(channel=CHANNEL, text="card", blocks=[
        {"type": "actions", "block_id": "decide", "elements": [approve]}])
    [card] = api.messages(CHANNEL)
    sender.click(LEAD, "approve", message=card)
    [got] = receiver.received
    assert _verified(got)
    payload = _payload(got)
    assert payload["type"] == "block_actions"
    assert payload["user"]["id"] == LEAD
    assert payload["container"] == {"type": "message", "message_ts": card["ts"],
                                    "channel_id": CHANNEL, "is_ephemeral": False}
    [action] = payload["actions"]
    assert (action["type"], action["action_id"], action["block_id"], action["value"]) == (
        "button", "approve", "decide", '{"referral": 7}')
    assert payload["message"]["ts"] == card["ts"]
    assert payload["response_url"].startswith(api.base_url + "/response/")
    with pytest.raises(AssertionError, match="no button"):
        sender.click(LEAD, "reject", message=card)
    with pytest.raises(AssertionError, match="no button"):
        sender.click(LEAD, "approve", '{"referral": 8}', message=card)


def test_state_values_for_element_types() -> None:
    select = {"type": "static_select", "action_id": "outcome", "options": [
        {"text": {"type": "plain_text", "text": "Pre-qualified"}, "value": "pre_qualified"}]}
    assert state_value(select, "pre_qualified") == {"type": "static_select", "selected_option": {
        "text": {"type": "plain_text", "text": "Pre-qualified"}, "value": "pre_qualified"}}
    with pytest.raises(AssertionError):
        state_value(select, "not_offered")
    assert state_value("plain_text_input", "hi") == {"type": "plain_text_input", "value": "hi"}
    assert state_value("number_input", 3) == {"type": "number_input", "value": "3"}
    assert state_value("datepicker", "2024-11-23")["selected_date"] == "2024-11-23"
    assert state_value("timepicker", "14:30")["selected_time"] == "14:30"
    assert state_value("datetimepicker", 1732370000)["selected_date_time"] == 1732370000
    assert state_value("users_select", COORD) == {"type": "users_select", "selected_user": COORD}
    assert state_value("checkboxes", ["a"])["selected_options"][0]["value"] == "a"
    assert state_value("radio_buttons", None) == {"type": "radio_buttons",
                                                  "selected_option": None}


def _open_form(api: SlackStandin, client: WebClient, **extra: Any) -> dict[str, Any]:
    view = modal(callback_id="log_call", submit={"type": "plain_text", "text": "Save"},
                 blocks=[text_input("notes", "notes_input"),
                         text_input("extra", "extra_input", optional=True)], **extra)
    return dict(client.views_open(trigger_id=api.issue_trigger_id(COORD), view=view)["view"])


def test_view_submission_payload_and_errors_keep_the_view(sender: SlackSender,
                                                          api: SlackStandin,
                                                          receiver: Receiver,
                                                          client: WebClient) -> None:
    view = _open_form(api, client)
    receiver.answers.append((200, json.dumps({"response_action": "errors",
                                              "errors": {"notes": "Too short"}}).encode()))
    sender.submit(COORD, view["id"], {"notes_input": "hi"})
    payload = _payload(receiver.received[0])
    assert payload["type"] == "view_submission"
    assert payload["view"]["callback_id"] == "log_call"
    assert payload["view"]["state"]["values"] == {
        "notes": {"notes_input": {"type": "plain_text_input", "value": "hi"}},
        "extra": {"extra_input": {"type": "plain_text_input", "value": None}}}
    assert api.is_open(view["id"])
    assert api.view_errors[view["id"]] == {"notes": "Too short"}
    with pytest.raises(AssertionError, match="required input"):
        sender.submit(COORD, view["id"], {"extra_input": "only the optional one"})


def test_view_submission_answers_update_push_clear_and_close(sender: SlackSender,
                                                             api: SlackStandin,
                                                             receiver: Receiver,
                                                             client: WebClient) -> None:
    view = _open_form(api, client)
    done = modal(title="Saved", submit={"type": "plain_text", "text": "Next"})
    receiver.answers.append((200, json.dumps({"response_action": "update",
                                              "view": done}).encode()))
    sender.submit(COORD, view["id"], {"notes_input": "ok"})
    assert api.view(view["id"])["title"]["text"] == "Saved"
    receiver.answers.append((200, json.dumps({"response_action": "push",
                                              "view": done}).encode()))
    sender.view_submission(COORD, view["id"], {})
    assert len(api.view_stack(COORD)) == 2
    top = api.view_stack(COORD)[-1]["id"]
    sender.view_submission(COORD, top, {})
    assert [v["id"] for v in api.view_stack(COORD)] == [view["id"]]
    receiver.answers.append((200, json.dumps({"response_action": "clear"}).encode()))
    sender.view_submission(COORD, view["id"], {})
    assert api.view_stack(COORD) == []
    assert api.problems == []


def test_view_closed_is_sent_only_when_notify_on_close(sender: SlackSender, api: SlackStandin,
                                                       receiver: Receiver,
                                                       client: WebClient) -> None:
    quiet = _open_form(api, client)
    assert sender.view_closed(COORD, quiet["id"]) is None
    assert receiver.received == []
    noisy = _open_form(api, client, notify_on_close=True)
    resp = sender.view_closed(COORD, noisy["id"])
    assert resp is not None
    payload = _payload(receiver.received[0])
    assert (payload["type"], payload["view"]["id"], payload["is_cleared"]) == (
        "view_closed", noisy["id"], True)
    assert not api.is_open(noisy["id"])


def test_events_and_url_verification(sender: SlackSender, receiver: Receiver) -> None:
    sender.event({"type": "app_home_opened", "user": COORD, "tab": "home"}, event_id="Ev01")
    sender.url_verification("challenge-abc")
    first, second = receiver.received
    assert _verified(first)
    assert _verified(second)
    envelope = json.loads(first.body)
    assert envelope["type"] == "event_callback"
    assert envelope["event_id"] == "Ev01"
    assert isinstance(envelope["event_time"], int)
    assert envelope["event"]["user"] == COORD
    assert json.loads(second.body) == {"token": "standin-verification",
                                       "type": "url_verification",
                                       "challenge": "challenge-abc"}


# ------------------------------------------------------------------ a real Bolt app


def _serve_bolt(app: App) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            headers = {k.lower(): [v] for k, v in self.headers.items()}
            resp = app.dispatch(BoltRequest(body=body, headers=headers))
            data = resp.body.encode()
            self.send_response(resp.status)
            for k, values in resp.headers.items():
                if k.lower() != "content-length":
                    for v in values:
                        self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/slack/events"


def test_a_bolt_app_round_trip(api: SlackStandin) -> None:
    app = App(token=TOKEN, signing_secret=SECRET,
              client=WebClient(token=TOKEN, base_url=api.url))

    @app.command("/prescreen")
    def open_form(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        client.views_open(trigger_id=body["trigger_id"], view=modal(
            callback_id="log_call", submit={"type": "plain_text", "text": "Save"},
            blocks=[text_input("notes", "notes_input")]))

    @app.view("log_call")
    def save(ack: Ack, view: dict[str, Any], client: WebClient) -> None:
        notes = view["state"]["values"]["notes"]["notes_input"]["value"]
        ack()
        client.chat_postMessage(channel=CHANNEL, text=f"logged: {notes}", blocks=[
            {"type": "actions", "block_id": "decide", "elements": [
                {"type": "button", "action_id": "approve", "value": "7",
                 "text": {"type": "plain_text", "text": "Approve"}}]}])

    @app.action("approve")
    def approve(ack: Ack, respond: Respond) -> None:
        ack()
        respond(text="approved", replace_original=True)

    server, url = _serve_bolt(app)
    try:
        slack = SlackSender(url, SECRET, api, team_id=TEAM)
        assert slack.slash_command(COORD, channel_id=CHANNEL).status_code == 200
        form = api.wait_for(lambda s: s.open_view(COORD), message="modal opened")
        assert slack.submit(COORD, form["id"], {"notes_input": "called back"}).status_code == 200
        assert not api.is_open(form["id"])
        [card] = api.wait_for(lambda s: s.messages(CHANNEL), message="card posted")
        assert card["text"] == "logged: called back"
        assert slack.click(LEAD, "approve", message=card).status_code == 200
        api.wait_for(lambda s: s.messages(CHANNEL)[0]["text"] == "approved",
                     message="card replaced")
        assert slack.slash_command(COORD, signing_secret="wrong").status_code == 401
        assert api.problems == []
    finally:
        server.shutdown()
        server.server_close()


def test_files_upload_with_wrong_length_fails_and_channel_errors_are_slacks(
        client: WebClient, api: SlackStandin) -> None:
    ticket = client.files_getUploadURLExternal(filename="funnel.png", length=10)
    short = requests.post(str(ticket["upload_url"]), data=b"abc", timeout=5)
    assert short.status_code == 400
    assert error_of(lambda: client.files_completeUploadExternal(
        files=[{"id": ticket["file_id"]}], channel_id=CHANNEL)) == "file_not_found"
    ok = requests.post(str(ticket["upload_url"]), data=b"0123456789", timeout=5)
    assert ok.text == "OK - 10"
    assert error_of(lambda: client.files_completeUploadExternal(
        files=[{"id": ticket["file_id"]}], channel_id="C0NOBOT01")) == "not_in_channel"
    assert error_of(lambda: client.api_call(
        "files.getUploadURLExternal", params={"length": 3})) == "invalid_arguments"
    done = client.files_completeUploadExternal(files=[{"id": ticket["file_id"], "title": "Funnel"}],
                                               channel_id=CHANNEL, initial_comment="Week 47")
    assert done["files"] == [{"id": ticket["file_id"], "title": "Funnel"}]
    [msg] = api.messages(CHANNEL)
    assert msg["text"] == "Week 47" and msg["files"][0]["mimetype"] == "image/png"
    assert msg["files"][0]["size"] == 10


# ----- Sign in with Slack (OpenID Connect) ------------------------------------------------------

OIDC_ID, OIDC_SECRET = "1111.2222", "oidc-secret"
REDIRECT = "http://127.0.0.1:9/secure/auth/callback"


def _pkce(verifier: str) -> str:
    import base64
    import hashlib

    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _authorize(api: SlackStandin, user: str, verifier: str = "v" * 50, nonce: str = "n-1") -> str:
    from urllib.parse import parse_qs, urlsplit

    api.sign_in_as(user)
    resp = requests.get(api.base_url + "/openid/connect/authorize", allow_redirects=False, timeout=5,
                        params={"response_type": "code", "scope": "openid email profile",
                                "client_id": OIDC_ID, "redirect_uri": REDIRECT, "state": "s-1",
                                "nonce": nonce, "code_challenge": _pkce(verifier),
                                "code_challenge_method": "S256"})
    assert resp.status_code == 302
    args = parse_qs(urlsplit(resp.headers["location"]).query)
    assert args["state"] == ["s-1"]
    return args["code"][0]


def _token(api: SlackStandin, code: str, verifier: str = "v" * 50, secret: str = OIDC_SECRET,
           redirect: str = REDIRECT) -> dict[str, Any]:
    resp = requests.post(api.base_url + "/api/openid.connect.token", timeout=5, data={
        "client_id": OIDC_ID, "client_secret": secret, "code": code, "grant_type": "authorization_code",
        "redirect_uri": redirect, "code_verifier": verifier})
    assert resp.status_code == 200  # Slack answers errors with HTTP 200 and ok: false
    return dict(resp.json())


@pytest.fixture
def oidc(api: SlackStandin) -> SlackStandin:
    api.register_oidc_client(OIDC_ID, OIDC_SECRET, [REDIRECT])
    return api


def test_oidc_discovery_document_has_slacks_fields(oidc: SlackStandin) -> None:
    doc = requests.get(oidc.base_url + "/.well-known/openid-configuration", timeout=5).json()
    base = oidc.base_url
    assert doc["issuer"] == base
    assert doc["authorization_endpoint"] == base + "/openid/connect/authorize"
    assert doc["token_endpoint"] == base + "/api/openid.connect.token"
    assert doc["userinfo_endpoint"] == base + "/api/openid.connect.userInfo"
    assert doc["jwks_uri"] == base + "/openid/connect/keys"
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
    assert set(doc["scopes_supported"]) == {"openid", "profile", "email"}
    assert doc["response_types_supported"] == ["code"]
    keys = requests.get(doc["jwks_uri"], timeout=5).json()["keys"]
    assert [(k["kty"], k["alg"], k["use"]) for k in keys] == [("RSA", "RS256", "sig")]
    assert "d" not in keys[0]  # public half only


def test_oidc_code_gives_an_id_token_once(oidc: SlackStandin) -> None:
    from joserfc import jwt
    from joserfc.jwk import KeySet

    code = _authorize(oidc, COORD)
    answer = _token(oidc, code)
    assert answer["ok"] is True and answer["token_type"] == "Bearer"
    assert set(answer) == {"ok", "access_token", "token_type", "id_token"}
    keys = KeySet.import_key_set(requests.get(oidc.base_url + "/openid/connect/keys", timeout=5).json())
    claims = jwt.decode(answer["id_token"], keys, algorithms=["RS256"]).claims
    assert claims["iss"] == oidc.base_url and claims["aud"] == OIDC_ID and claims["nonce"] == "n-1"
    assert claims["https://slack.com/user_id"] == COORD
    assert claims["https://slack.com/team_id"] == TEAM
    assert _token(oidc, code) == {"ok": False, "error": "code_already_used"}
    info = requests.get(oidc.base_url + "/api/openid.connect.userInfo", timeout=5,
                        headers={"Authorization": f"Bearer {answer['access_token']}"}).json()
    assert info["ok"] is True and info["sub"] == COORD


def test_oidc_token_errors_are_slacks(oidc: SlackStandin) -> None:
    assert _token(oidc, _authorize(oidc, COORD), secret="wrong") == {
        "ok": False, "error": "bad_client_secret"}
    assert _token(oidc, _authorize(oidc, COORD), verifier="x" * 50) == {
        "ok": False, "error": "invalid_code_verifier"}
    assert _token(oidc, _authorize(oidc, COORD), redirect="http://127.0.0.1:9/elsewhere") == {
        "ok": False, "error": "bad_redirect_uri"}
    assert _token(oidc, "no-such-code") == {"ok": False, "error": "invalid_code"}


def test_oidc_authorize_without_a_signed_in_user_offers_the_workspace_members(
        oidc: SlackStandin) -> None:
    oidc.sign_in_as(None)
    page = requests.get(oidc.base_url + "/openid/connect/authorize", timeout=5, params={
        "response_type": "code", "scope": "openid", "client_id": OIDC_ID, "redirect_uri": REDIRECT,
        "state": "s"}).text
    assert "Continue as" in page
    wrong = requests.get(oidc.base_url + "/openid/connect/authorize", timeout=5, params={
        "response_type": "code", "scope": "openid", "client_id": OIDC_ID,
        "redirect_uri": "https://evil.example/cb", "state": "s"})
    assert wrong.status_code == 400
