"""Sandbox mode: the real app against the built-in Slack stand-in, with demo data."""

from __future__ import annotations

import logging
import secrets
from typing import Any
from urllib.parse import urlsplit

import yaml

from app.factory import create_app, create_context
from app.ringcentral_webhook import webhook_routes
from app.runtime import Runtime, sandbox_key, secure_page_routes
from app.web import SlackWebApp
from bot.clock import OffsetClock
from bot.config import Settings
from bot.secure_links import CALLBACK
from bot.studies.importer import import_studies
from sandbox.console import console_routes, static_routes
from sandbox.graph import start_sandbox_graph
from sandbox.ringcentral import start_sandbox_ringcentral
from sandbox.seed import has_candidates, seed_demo
from sandbox.slack_standin import SlackSender, SlackStandin
from sandbox.state import SANDBOX_TEAM, SANDBOX_TOKEN, Sandbox, demo_file
from storage.db import Database

log = logging.getLogger("prescreen.sandbox")

def seed_standin(standin: SlackStandin, demo: dict[str, Any]) -> None:
    members = demo.get("members") or []
    for m in members:
        standin.add_user(m["slack_id"], m.get("name") or m["slack_id"], email=m.get("email"),
                         tz=m.get("timezone", "America/New_York"))
    ids = [m["slack_id"] for m in members]
    for s in demo.get("studies") or []:
        standin.add_channel(s["channel"], s["key"].lower() + "-prescreen", members=ids)
        for site in s.get("sites") or []:
            if site.get("channel"):
                standin.add_channel(site["channel"], f"site-{site['key'].lower()}", members=ids)


def redirect_uri_for(url: str) -> str:
    return url + CALLBACK


def start_sandbox(settings: Settings, *, db: Database, clock: OffsetClock,
                  app_url: str | None = None) -> Runtime:
    settings.check_sandbox()
    # The stand-in keeps the sandbox's time, so message times follow the console's clock.
    standin = SlackStandin(bot_token=SANDBOX_TOKEN, team_id=SANDBOX_TEAM,
                           clock=lambda: clock.now().timestamp()).start(host="127.0.0.1")
    demo_path = demo_file()
    demo = yaml.safe_load(demo_path.read_text())
    seed_standin(standin, demo)
    import_studies(db, demo_path, actor="sandbox")

    url = app_url or f"http://{settings.host}:{settings.port}"
    url = url.rstrip("/")
    # Sign in with Slack against the stand-in, set here and not from the environment (real-looking
    # settings there stop the sandbox): a client of its own, the page at the sandbox's address.
    oidc_id, oidc_secret = f"sandbox.{secrets.token_hex(6)}", secrets.token_hex(16)
    standin.register_oidc_client(oidc_id, oidc_secret, [redirect_uri_for(url)])
    sandbox_settings = settings.model_copy(update={
        "slack_api_url": standin.url, "public_url": url, "slack_oidc_issuer": standin.base_url,
        "slack_oidc_client_id": oidc_id, "slack_oidc_client_secret": oidc_secret})
    keys = [sandbox_key(settings.data_dir)]  # never a real key: the sandbox runs without any
    ctx = create_context(sandbox_settings, db=db, clock=clock, encryption_keys=keys,
                         bot_token=SANDBOX_TOKEN)
    secret = secrets.token_hex(32)
    bolt = create_app(ctx, signing_secret=secret)
    sender = SlackSender(url + "/slack/events", secret, standin, team_id=SANDBOX_TEAM)
    sandbox = Sandbox(standin=standin, sender=sender, clock=clock, demo=demo,
                      port=urlsplit(url).port or settings.port)
    ctx.extras["sandbox"] = sandbox
    if not has_candidates(ctx):
        log.info("sandbox: seeded %d demo candidates", seed_demo(ctx))
    else:
        log.info("sandbox: using the existing data (messages sent before this start are not shown); "
                 "`prescreen-bot sandbox reset` restores the full demo")

    sandbox.ctx = ctx
    ringcentral = start_sandbox_ringcentral(ctx, demo, url)
    web = SlackWebApp(bolt, db, routes={**console_routes(sandbox), **webhook_routes(ctx)},
                      prefix_routes={**static_routes(sandbox.port), **secure_page_routes(ctx)},
                      signing_secret=secret)
    rt = Runtime(settings, ctx, bolt, web, secret, sandbox=sandbox)
    rt.closers.extend([db.dispose, standin.stop])
    if ringcentral is not None:
        rt.closers.append(ringcentral.stop)
    graph = start_sandbox_graph(ctx)
    if graph is not None:
        rt.closers.append(graph.stop)
    log.info("sandbox: Slack stand-in at %s, console at %s/", standin.url, url)
    return rt
