"""/docs: Swagger UI served from this process, not from a CDN (a 112 center may have no
internet). The assets come from the swagger-ui-bundle-v2 package (Swagger UI 5, which reads
FastAPI's OpenAPI 3.1)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

ASSETS = "/docs/assets"


def install(app: FastAPI) -> None:
    """Serve Swagger UI at /docs with its assets under /docs/assets (create the app with
    ``docs_url=None, redoc_url=None`` so FastAPI's CDN pages are not served)."""
    app.mount(ASSETS, StaticFiles(directory=swagger_ui_path), name="docs-assets")
    redirect = "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - API",
            oauth2_redirect_url=redirect,
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
        )

    @app.get(redirect, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()
