"""The sandbox console: a page to type /prescreen as a demo member and see what the app sent."""

from __future__ import annotations

import datetime as dt
import html
import json
from typing import Any

from bot.sandbox.runtime import Sandbox
from bot.web import Route, WebRequest, WebResponse


def _state(sandbox: Sandbox) -> dict[str, Any]:
    s = sandbox.standin
    return {
        "now": sandbox.clock.now().isoformat(),
        "members": [{"id": m["slack_id"], "name": m.get("name", m["slack_id"])}
                    for m in sandbox.members],
        "channels": sandbox.channels,
        "messages": s.messages(),
        "ephemerals": s.ephemerals(),
        "responses": s.responses,
        "views": list(s.views.values()) if isinstance(s.views, dict) else s.views,
    }


def console_routes(sandbox: Sandbox) -> dict[tuple[str, str], Route]:
    def page(_req: WebRequest) -> WebResponse:
        return WebResponse.text(_page(sandbox), content_type="text/html")

    def state(_req: WebRequest) -> WebResponse:
        return WebResponse(200, json.dumps(_state(sandbox), default=str),
                           [("content-type", "application/json")])

    def command(req: WebRequest) -> WebResponse:
        data = req.json() or {}
        user = str(data.get("user") or "")
        if user not in {m["slack_id"] for m in sandbox.members}:
            return WebResponse.json({"ok": False, "error": "pick a demo member"}, 400)
        channel = str(data.get("channel") or sandbox.channels[0]["id"])
        text = str(data.get("text") or "").strip()
        if text.startswith("/prescreen"):
            text = text[len("/prescreen"):].strip()
        resp = sandbox.sender.slash_command(user, text=text, channel_id=channel)
        body: Any
        try:
            body = resp.json()
        except ValueError:
            body = resp.text
        return WebResponse.json({"ok": resp.status_code == 200, "status": resp.status_code,
                                 "response": body})

    def clock(req: WebRequest) -> WebResponse:
        data = req.json() or {}
        minutes = int(data.get("minutes") or 0)
        if not 0 < minutes <= 7 * 24 * 60:
            return WebResponse.json({"ok": False, "error": "minutes must be 1..10080"}, 400)
        now = sandbox.clock.advance(dt.timedelta(minutes=minutes))
        return WebResponse.json({"ok": True, "now": now.isoformat()})

    return {
        ("GET", "/"): page,
        ("GET", "/sandbox/state"): state,
        ("POST", "/sandbox/command"): command,
        ("POST", "/sandbox/clock"): clock,
    }


def _page(sandbox: Sandbox) -> str:
    members = "".join(
        f'<option value="{html.escape(m["slack_id"])}">{html.escape(m.get("name", ""))}</option>'
        for m in sandbox.members
    )
    channels = "".join(
        f'<option value="{html.escape(c["id"])}">#{html.escape(c["name"])}</option>'
        for c in sandbox.channels
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>prescreen-bot sandbox</title>
<style>
body{{font-family:system-ui,sans-serif;margin:0;display:flex;height:100vh}}
aside{{width:16rem;background:#3f0e40;color:#fff;padding:1rem}} main{{flex:1;padding:1rem;overflow:auto}}
pre{{background:#f6f6f6;padding:.5rem;white-space:pre-wrap}} select,input,button{{font:inherit}}
</style></head><body>
<aside><h2>prescreen-bot</h2><p>Sandbox: no real Slack, no real patients.</p>
<label>Acting as<br><select id="user">{members}</select></label><br><br>
<label>In channel<br><select id="channel">{channels}</select></label></aside>
<main><form id="f"><input id="text" size="60" value="/prescreen help" aria-label="command">
<button>Send</button></form><h3>Reply</h3><pre id="reply"></pre>
<h3>What the app sent</h3><pre id="state"></pre></main>
<script>
async function refresh(){{const r=await fetch('/sandbox/state');
document.getElementById('state').textContent=JSON.stringify(await r.json(),null,1);}}
document.getElementById('f').onsubmit=async(e)=>{{e.preventDefault();
const r=await fetch('/sandbox/command',{{method:'POST',headers:{{'content-type':'application/json'}},
body:JSON.stringify({{user:user.value,channel:channel.value,text:text.value}})}});
document.getElementById('reply').textContent=JSON.stringify(await r.json(),null,1);refresh();}};
refresh();setInterval(refresh,3000);
</script></body></html>"""
