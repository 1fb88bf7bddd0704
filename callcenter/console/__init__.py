"""The browser console (operator board, supervisor dashboard, admin), served by the API itself.

Server-rendered pages (Jinja2) with one small script of our own, every file served from this
package: nothing comes from the internet, so the center keeps working when its link is down.
``install(app)`` is all the application needs to call.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from callcenter.console import admin, board, callbacks, calls, login, supervisor, web


def install(app: FastAPI) -> None:
    for module in (login, board, calls, callbacks, supervisor, admin):
        app.include_router(module.router)
    app.mount(
        f"{web.PREFIX}/static",
        StaticFiles(directory=Path(__file__).parent / "static"),
        name="console-static",
    )

    @app.exception_handler(web.LoginRequired)
    async def login_required(request: Request, exc: web.LoginRequired) -> Response:
        if request.url.path.endswith((".json", "/live")):
            return Response(status_code=401)  # the page's script goes to the log-in page
        suffix = "?expired=1" if exc.expired else ""
        response = RedirectResponse(f"{web.PREFIX}/login{suffix}", status_code=303)
        if exc.expired:
            response.delete_cookie(web.SESSION_COOKIE, path=web.PREFIX)
        return response

    @app.exception_handler(web.RoleRefused)
    async def role_refused(request: Request, _exc: web.RoleRefused) -> HTMLResponse:
        return web.render(
            request, "error.html", None, status_code=403, refusal="forbidden", code=403
        )

    @app.exception_handler(web.CsrfRefused)
    async def csrf_refused(request: Request, _exc: web.CsrfRefused) -> HTMLResponse:
        return web.render(
            request, "error.html", None, status_code=403, refusal="csrf_failed", code=403
        )
