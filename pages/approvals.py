"""Signing a referral decision on the secure page: /secure/sign/<opaque referral id>.

GET shows the referral, the decision and what the signature means, after a FRESH Sign in with
Slack (at most 5 minutes old; otherwise the browser goes to Slack again). POST signs: the
approver confirms with their printed name (from Slack's ID token). The rules are in
bot/referrals/workflow.py; this module parses, calls them and renders."""

from __future__ import annotations

from urllib.parse import urlencode

from bot.errors import InvalidInput
from bot.referrals import workflow
from bot.secure_links import LOGIN, sign_path
from pages.framework import PageRequest, Pages, Response


def _version(raw: str | None) -> int | None:
    return int(raw) if raw and raw.isdigit() and len(raw) < 10 else None


def register(pages: Pages) -> None:
    def fresh_sign_in(req: PageRequest, here: str) -> Response | None:
        """A redirect through Sign in with Slack again unless this session's sign-in is fresh."""
        assert req.session is not None
        if req.ctx.clock.now() - req.session.authenticated_at <= workflow.SIGN_FRESH:
            return None
        return Response(302, b"", [("location", f"{LOGIN}?{urlencode({'next': here, 'fresh': '1'})}")])

    def stale(req: PageRequest, message: str) -> Response:
        return pages.render(req, "sign_refused.html", status=409, message=message)

    def args(req: PageRequest, source: dict[str, str],
             damaged: str) -> tuple[str, int, str | None, str] | Response:
        """(decision, version, reason code, this page's path), or the "damaged" page."""
        decision, version = source.get("decision", ""), _version(source.get("v"))
        if decision not in ("approve", "reject") or version is None:
            return pages.error_page(req, 400, damaged)
        reason = source.get("reason") or None
        return decision, version, reason, sign_path(req.params["rid"], decision, version, reason)

    @pages.route("GET", "/sign/{rid}")
    def sign_form(req: PageRequest) -> Response:
        parsed = args(req, req.args, "This signature link is damaged. Press Approve or Reject "
                                     "on the card in Slack again.")
        if isinstance(parsed, Response):
            return parsed
        decision, version, reason, here = parsed
        again = fresh_sign_in(req, here)
        if again is not None:
            return again
        assert req.user_id is not None and req.session is not None
        try:
            page = workflow.signing(req.ctx, public_id=req.params["rid"], actor=req.user_id,
                                    decision=decision, version=version, reason=reason)
        except workflow.StaleSignature as exc:
            return stale(req, exc.message)
        return pages.render(req, "sign.html", page=page, action=here,
                            printed_name=req.session.printed_name or req.user_id, error=None)

    @pages.route("POST", "/sign/{rid}")
    def sign(req: PageRequest) -> Response:
        parsed = args(req, req.form, "That form arrived damaged. Press Approve or Reject on "
                                     "the card in Slack again.")
        if isinstance(parsed, Response):
            return parsed
        decision, version, reason, here = parsed
        again = fresh_sign_in(req, here)
        if again is not None:
            return pages.redirect(req, here)  # the GET sends the browser through Slack again
        assert req.user_id is not None and req.session is not None
        printed = req.session.printed_name or req.user_id
        signature = workflow.Signature(printed_name=printed,
                                       authenticated_at=req.session.authenticated_at)
        try:
            signed = workflow.sign_decision(
                req.ctx, public_id=req.params["rid"], actor=req.user_id, decision=decision,
                version=version, reason=reason, typed_name=req.form.get("printed_name", ""),
                signature=signature)
        except workflow.StaleSignature as exc:
            return stale(req, exc.message)
        except InvalidInput as exc:
            page = workflow.signing(req.ctx, public_id=req.params["rid"], actor=req.user_id,
                                    decision=decision, version=version, reason=reason)
            return pages.render(req, "sign.html", status=400, page=page, action=here,
                                printed_name=printed, error=exc.message)
        return pages.render(req, "signed.html", result=signed.result, printed_name=printed,
                            meaning=signed.meaning)
