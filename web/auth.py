"""Logging in (password + TOTP), logging out, a newcomer's enrolment from their link, and the
language of the console. The rules are ``services/staff_login.py``'s; these are its pages."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from domain.errors import Refusal
from locales import LANGUAGES
from services.staff_login import LoginThrottled
from web.pages import (
    LANGUAGE_COOKIE,
    SESSION_COOKIE,
    console_of,
    home_of,
    render,
    safe_next,
    session_of,
)
from web.security import LOGIN_CSRF_COOKIE, new_token


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _form_text(form: object, name: str, limit: int = 2048) -> str:
    value = form.get(name) if hasattr(form, "get") else None
    return value[:limit] if isinstance(value, str) else ""


def _login_form(
    request: Request, status_code: int = 200, error: str | None = None, name: str = ""
) -> Response:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or new_token()
    response = render(
        request, "login.html", status_code, csrf=token, error=error, name=name,
        next=safe_next(request.query_params.get("next")),
    )  # fmt: skip
    _set_cookie(request, response, LOGIN_CSRF_COOKIE, token, max_age=3600)
    return response


def _set_cookie(
    request: Request, response: Response, name: str, value: str, max_age: int | None = None
) -> None:
    response.set_cookie(
        name, value, max_age=max_age, httponly=True, samesite="strict",
        secure=console_of(request).secure, path="/",
    )  # fmt: skip


async def login_page(request: Request) -> Response:
    session = session_of(request)
    if session is not None:
        return RedirectResponse(home_of(session.staff), status_code=303)
    return _login_form(request)


async def login(request: Request) -> Response:
    form = await request.form()
    name = _form_text(form, "username", 64)
    password = _form_text(form, "password", 1024)
    code = _form_text(form, "totp", 16)
    login_service = console_of(request).app.staff_login
    try:
        result = await login_service.log_in(name, password, code, _client(request))
    except LoginThrottled as throttled:
        response = _login_form(request, 429, throttled.reason, name)
        response.headers["retry-after"] = str(throttled.retry_after_seconds)
        return response
    except Refusal as refused:
        return _login_form(request, 401, refused.reason, name)
    target = safe_next(_form_text(form, "next"))
    response = RedirectResponse(target if target != "/" else home_of(result.staff), status_code=303)
    _set_cookie(request, response, SESSION_COOKIE, result.token)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


async def logout(request: Request) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        await console_of(request).app.staff_login.log_out(token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


async def enrol_page(request: Request) -> Response:
    token = request.path_params["token"]
    try:
        enrolment = await console_of(request).app.staff_login.enrolment(token)
    except Refusal as refused:
        return render(request, "refused.html", 404, reason=refused.reason)
    return _enrol_form(request, enrolment)


def _enrol_form(
    request: Request, enrolment: object, status_code: int = 200, error: str | None = None
) -> Response:
    csrf = request.cookies.get(LOGIN_CSRF_COOKIE) or new_token()
    response = render(
        request, "enrol.html", status_code, csrf=csrf, enrolment=enrolment, error=error,
        token=request.path_params["token"],
    )  # fmt: skip
    _set_cookie(request, response, LOGIN_CSRF_COOKIE, csrf, max_age=3600)
    return response


async def enrol(request: Request) -> Response:
    token = request.path_params["token"]
    form = await request.form()
    service = console_of(request).app.staff_login
    try:
        await service.finish_enrolment(
            token,
            _form_text(form, "password", 1024),
            _form_text(form, "password_again", 1024),
            _form_text(form, "totp", 16),
        )
    except Refusal as refused:
        try:
            enrolment = await service.enrolment(token)
        except Refusal as gone:
            return render(request, "refused.html", 404, reason=gone.reason)
        return _enrol_form(request, enrolment, 400, refused.reason)
    return render(request, "enrolled.html")


async def language(request: Request) -> Response:
    """Choose the console's language (a cookie, for a year): from the picker in the footer."""
    chosen = request.query_params.get("lang", "")
    target = safe_next(request.query_params.get("next"))
    response = RedirectResponse(target, status_code=303)
    if chosen in LANGUAGES:
        _set_cookie(request, response, LANGUAGE_COOKIE, chosen, max_age=365 * 24 * 3600)
    return response


ROUTES = [
    Route("/login", login_page, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/enrol/{token}", enrol_page, methods=["GET"]),
    Route("/enrol/{token}", enrol, methods=["POST"]),
    Route("/language", language, methods=["GET"]),
]
