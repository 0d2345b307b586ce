"""Sign in with Slack on the secure page: /secure/login, /secure/auth/callback, /secure/logout.
The rules are in bot/signin.py; this module parses, calls them and renders."""

from __future__ import annotations

from bot import signin
from pages.framework import LOGIN_COOKIE_TTL_S, PageRequest, Pages, Response


def register(pages: Pages) -> None:
    @pages.route("GET", "/login", signed_in=False)
    def login(req: PageRequest) -> Response:
        # `fresh=1`: a new trip to Slack even when signed in (signing a decision needs one)
        if req.session is not None and req.args.get("fresh") != "1":
            return pages.redirect(req, req.args.get("next") or "/secure/")
        try:
            start = signin.begin(req.ctx, req.args.get("next"))
        except signin.SignInUnavailable as exc:
            return pages.render(req, "refused.html", status=503, title="Sign-in unavailable",
                                message=exc.message)
        resp = pages.external_redirect(start.url)
        pages.set_cookie(resp, pages.login_cookie, start.state, max_age=LOGIN_COOKIE_TTL_S)
        return resp

    @pages.route("GET", "/auth/callback", signed_in=False)
    def callback(req: PageRequest) -> Response:
        try:
            done = signin.complete(req.ctx, state=req.args.get("state"), code=req.args.get("code"),
                                   error=req.args.get("error"),
                                   browser_state=req.cookies.get(pages.login_cookie))
        except signin.SignInRefused as exc:
            resp = pages.render(req, "refused.html", status=403, title="Not signed in",
                                message=exc.message)
        except signin.SignInUnavailable as exc:
            resp = pages.render(req, "refused.html", status=503, title="Sign-in unavailable",
                                message=exc.message)
        else:
            resp = pages.redirect(req, done.next_path)
            pages.set_cookie(resp, pages.session_cookie, done.cookie)
        pages.clear_cookie(resp, pages.login_cookie)
        return resp

    @pages.route("POST", "/logout")
    def logout(req: PageRequest) -> Response:
        assert req.user_id is not None
        signin.sign_out(req.ctx, req.cookies.get(pages.session_cookie), req.user_id)
        req.user_id, req.csrf_token = None, ""
        resp = pages.render(req, "signed_out.html")
        pages.clear_cookie(resp, pages.session_cookie)
        return resp
