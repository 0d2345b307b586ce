"""The secure page's candidate pages: add a candidate, the contact card (with notes) and search.
Thin: parse the request, call a use case in bot/candidates/, render. Identifiers appear only in
these pages' HTML, never in a log line or a Slack call."""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from slack_sdk.errors import SlackApiError

from bot.candidates.add import NewCandidate, add_candidate, candidate_form
from bot.candidates.card import ContactCard, contact_card
from bot.candidates.handback import handback_update
from bot.candidates.notes import MAX_NOTE, add_note
from bot.candidates.search import HOW, search_candidates
from bot.candidates.text_consent import set_consent_to_text
from bot.errors import DomainError, InvalidInput
from bot.forms import FormErrors
from bot.regions import STATES
from bot.secure_links import PREFIX
from pages.framework import PageRequest, Pages, Response

log = logging.getLogger("prescreen.pages.candidates")

FIELDS = ("name", "phone", "dob", "state", "source")
YES = ("yes", "on", "true", "1")
STATE_CHOICES = sorted(((code, name) for code, (name, _tz) in STATES.items()), key=lambda s: s[1])


def card_path(ref: str) -> str:
    return f"{PREFIX}/c/{ref}"


def window_text(card: ContactCard) -> str:
    """ "open now (10:42 for them)" or "closed — opens 08:00 their time"."""
    w = card.window
    if w.open:
        return f"open now ({w.local_now:%H:%M} for them)"
    assert w.opens_at is not None
    day = w.opens_at.date()
    when = (f"{w.opens_at:%H:%M}" if day == w.local_now.date()
            else f"tomorrow {w.opens_at:%H:%M}" if day == w.local_now.date() + dt.timedelta(days=1)
            else f"{w.opens_at:%a} {w.opens_at:%H:%M}")
    why = ""
    if w.limit_reached:
        rules = f" under {w.rule_label}" if w.rule_label else ""
        why = f" ({w.limit_reached} calls in 24 hours is the most allowed{rules})"
    return f"closed{why} — opens {when} their time"


def _when(at: dt.datetime | None, tz: str) -> str:
    return "" if at is None else f"{at.astimezone(ZoneInfo(tz)):%a %d %b %Y %H:%M}"


def register(pages: Pages) -> None:
    # ----- add a candidate -----

    def form_page(req: PageRequest, *, values: dict[str, str], errors: dict[str, str],
                  status: int = 200, duplicate_of: str | None = None) -> Response:
        assert req.user_id is not None
        form = candidate_form(req.ctx, req.user_id, values.get("study") or None)
        back = {"handback": values["handback"]} if values.get("handback") else {}
        picks = [(s, f"{PREFIX}/candidates/new?{urlencode({'study': s.key, **back})}")
                 for s in form.studies]
        others = f"{PREFIX}/candidates/new" + (f"?{urlencode(back)}" if back else "")
        return pages.render(req, "candidate_new.html", status=status, form=form, values=values,
                            errors=errors, duplicate_of=duplicate_of, states=STATE_CHOICES,
                            picks=picks, others=others)

    @pages.route("GET", "/candidates/new")
    def new_candidate(req: PageRequest) -> Response:
        values = {"study": req.args.get("study", "").strip().upper()[:16],
                  "handback": req.args.get("handback", "")[:100],
                  "form_token": secrets.token_urlsafe(16), "consent": "",
                  "consent_to_text": ""}
        return form_page(req, values=values, errors={})

    @pages.route("POST", "/candidates/new")
    def create_candidate(req: PageRequest) -> Response:
        assert req.user_id is not None
        f = req.form
        values = {k: f.get(k, "")[:300] for k in (*FIELDS, "study", "handback", "form_token")}
        values["study"] = values["study"].strip().upper()
        values["consent"] = "yes" if f.get("consent", "").lower() in YES else ""
        values["consent_to_text"] = "yes" if f.get("consent_to_text", "").lower() in YES else ""
        if not values["form_token"]:
            values["form_token"] = secrets.token_urlsafe(16)
        try:
            added = add_candidate(req.ctx, NewCandidate(
                user_id=req.user_id, study_key=values["study"], name=values["name"],
                phone=values["phone"], dob=values["dob"], state=values["state"],
                source=values["source"], consent=bool(values["consent"]),
                form_token=values["form_token"],
                consent_to_text=bool(values["consent_to_text"])))
        except FormErrors as exc:
            errors = dict(exc.errors)
            if exc.duplicate_of:  # the modal's wording points to Slack; here the card is a click away
                errors["phone"] = f"Already a candidate: {exc.duplicate_of}."
            return form_page(req, values=values, errors=errors, status=400,
                             duplicate_of=exc.duplicate_of)
        if not values["handback"]:
            return pages.redirect(req, card_path(added.ref))
        return pages.render(req, "candidate_added.html", ref=added.ref,
                            modal_updated=_hand_back(req, values["handback"], added.ref))

    def _hand_back(req: PageRequest, token: str, ref: str) -> bool:
        """Update the log-call modal that sent the user here; False when there is none to update
        (another user's token, or the modal was closed)."""
        assert req.user_id is not None
        try:
            update = handback_update(req.ctx, req.user_id, token, ref)
        except DomainError:
            return False
        if update is None:
            return False
        try:
            req.ctx.slack.views_update(external_id=update.external_id, view=update.view)
        except SlackApiError as exc:
            log.info("log-call modal not updated after adding %s: %s", ref,
                     exc.response.get("error") if exc.response else "no answer")
            return False
        return True

    # ----- the contact card and its notes -----

    def card_page(req: PageRequest, ref: str, *, note: str = "", note_error: str = "",
                  consent_error: str = "", status: int = 200) -> Response:
        assert req.user_id is not None
        card = contact_card(req.ctx, req.user_id, ref)
        return pages.render(
            req, "contact_card.html", status=status, card=card, window=window_text(card),
            next_callback=(f"{_when(card.next_callback, card.timezone)} their time"
                           if card.next_callback else ""),
            notes=[(n, _when(n.at, card.viewer_tz)) for n in card.notes],
            attempts=[(a, _when(a.at, card.viewer_tz)) for a in card.attempt_list],
            note=note, note_error=note_error, max_note=MAX_NOTE, consent_error=consent_error,
            texted_stop=(f"{card.texted_stop_at.astimezone(ZoneInfo(card.viewer_tz)):%a %d %b %Y}"
                         if card.texted_stop_at else ""))

    @pages.route("GET", "/c/{ref}")
    def card(req: PageRequest) -> Response:
        return card_page(req, req.params["ref"])

    @pages.route("POST", "/c/{ref}/notes")
    def new_note(req: PageRequest) -> Response:
        assert req.user_id is not None
        text = req.form.get("text", "")
        try:
            added = add_note(req.ctx, req.user_id, req.params["ref"], text)
        except FormErrors as exc:
            return card_page(req, req.params["ref"], note=text[:MAX_NOTE * 2],
                             note_error=exc.errors.get("text", ""), status=400)
        return pages.redirect(req, card_path(added.ref))

    @pages.route("POST", "/c/{ref}/consent-to-text")
    def consent_to_text(req: PageRequest) -> Response:
        assert req.user_id is not None
        wanted = req.form.get("consent_to_text", "").lower() in YES
        try:
            done = set_consent_to_text(req.ctx, req.user_id, req.params["ref"], wanted)
        except FormErrors as exc:
            return card_page(req, req.params["ref"], status=400,
                             consent_error=exc.errors.get("consent_to_text", ""))
        return pages.redirect(req, card_path(done.ref))

    # ----- search -----

    @pages.route("GET", "/search")
    def search(req: PageRequest) -> Response:
        assert req.user_id is not None
        query = req.args.get("q", "")[:200]
        if not query.strip():
            return pages.render(req, "search.html", query="", hits=None, error="")
        try:
            hits = search_candidates(req.ctx, req.user_id, query)
        except InvalidInput as exc:
            return pages.render(req, "search.html", status=400, query=query, hits=None,
                                error=exc.message or HOW)
        return pages.render(req, "search.html", query=query, hits=hits, error="")
