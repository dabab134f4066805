"""The token in front of `cockpit --serve`: textual-serve has no login of its own.

127.0.0.1 is reachable by every user of a shared machine, and the page drives the agents. So each
start makes a random secret and prints the URL that carries it (`/?token=…`), as notebook servers
do. Opening that URL sets an HttpOnly, SameSite=Strict cookie and redirects to the same page
without the token (out of the address bar and of Referer headers); from then on the cookie lets
the page, its static files and its websocket through. A request with neither gets 403 before
textual-serve sees it, so no tab process is started for it.

What a cookie cannot do: browsers send a host's cookies to all of its ports, so a page another
local user serves on 127.0.0.1 and that you open in the same browser receives it.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable

from aiohttp import web
from textual_serve.server import Server

TOKEN_PARAM = "token"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def cookie_name(port: int) -> str:
    """One name per port: cookies are shared by all ports of a host, two cockpits must not clash."""
    return f"cockpit-token-{port}"


def _matches(given: str | None, token: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


def token_middleware(token: str, cookie: str) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """aiohttp middleware: the token in the query or the cookie, or 403."""

    @web.middleware
    async def require_token(request: web.Request, handler: Handler) -> web.StreamResponse:
        if _matches(request.query.get(TOKEN_PARAM), token):
            if request.method == "GET" and request.path == "/":  # the printed URL
                response = web.Response(status=302, headers={
                    "Location": str(request.rel_url.without_query_params(TOKEN_PARAM)),
                })
                response.set_cookie(cookie, token, httponly=True, samesite="Strict", path="/")
                return response
            return await handler(request)
        if _matches(request.cookies.get(cookie), token):
            return await handler(request)
        raise web.HTTPForbidden(
            text="cockpit --serve: open the URL it printed when it started (it ends in ?token=...)\n"
        )

    return require_token


class TokenServer(Server):
    """textual-serve's server with `token_middleware` on its app and the token URL printed."""

    def __init__(self, command: str, *, host: str, port: int, title: str) -> None:
        super().__init__(command, host=host, port=port, title=title)
        self.token = secrets.token_urlsafe(32)

    @property
    def url(self) -> str:
        return f"{self.public_url}/?{TOKEN_PARAM}={self.token}"

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        app.middlewares.append(token_middleware(self.token, cookie_name(self.port)))
        return app

    async def on_startup(self, app: web.Application) -> None:
        print(f"cockpit: open {self.url} in a browser (Ctrl+C stops)", flush=True)
