"""The explorer's HTTP server: the page (`static/`) and the JSON API (`nmt.serving.api`) on the
standard library's threading HTTP server.

Why not Gradio or a web framework: the explorer is one page and three routes; the standard
library serves them with no dependency to install or keep up to date, works offline, and keeps
the API a plain JSON service that programs call the same way the page does. Every failure a
client can cause is a 4xx with `{"error": "..."}`; anything else is logged here and answered
with a one-line 500, and the server goes on serving.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from functools import partial
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

from nmt.serving.api import ApiError, ExplorerApi

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 << 20
"""The largest request body read (1 MiB); a longer one is refused (413) unread."""

STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/explorer.js": ("explorer.js", "text/javascript; charset=utf-8"),
    "/static/explorer.css": ("explorer.css", "text/css; charset=utf-8"),
}


class ExplorerHandler(BaseHTTPRequestHandler):
    """Routes one request: the page's files, or an API call with a JSON body."""

    server_version = "nmt-serve"
    timeout = 30  # seconds a client may keep a connection (or its unread body) waiting

    def __init__(self, *args: Any, api: ExplorerApi, **kwargs: Any) -> None:
        self.api = api
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
        path = self.path.split("?", 1)[0]
        if path in STATIC:
            name, kind = STATIC[path]
            self._send(HTTPStatus.OK, resources.files("nmt.serving").joinpath("static", name).read_bytes(), kind)
        elif path == "/api/info":
            self._answer(lambda body: self.api.info(), None)
        else:
            self._error(HTTPStatus.NOT_FOUND, f"no page at {path}")

    def do_POST(self) -> None:  # noqa: N802
        routes: dict[str, Callable[[Any], dict[str, Any]]] = {
            "/api/translate": self.api.translate,
            "/api/score": self.api.score,
        }
        path = self.path.split("?", 1)[0]
        if path not in routes:
            self._error(HTTPStatus.NOT_FOUND, f"no API at {path} (POST /api/translate or /api/score)")
            return
        if self.headers.get_content_type() != "application/json":
            # also what keeps other web pages out: a cross-site POST of JSON needs CORS, never granted here
            self._error(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send the body as Content-Type: application/json")
            return
        length = self.headers.get("Content-Length")
        if length is None or not length.isdecimal():
            self._error(HTTPStatus.LENGTH_REQUIRED, "send the body with a Content-Length")
            return
        if int(length) > MAX_BODY_BYTES:
            self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"the body has {length} bytes; at most {MAX_BODY_BYTES}")
            self.close_connection = True  # the unread body must not be taken for the next request
            return
        raw = self.rfile.read(int(length))
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as error:
            self._error(HTTPStatus.BAD_REQUEST, f"the body is not valid JSON ({error})")
            return
        self._answer(routes[path], body)

    def do_PUT(self) -> None:  # noqa: N802
        self._error(HTTPStatus.METHOD_NOT_ALLOWED, "use GET for pages and /api/info, POST for the API")

    do_DELETE = do_PATCH = do_PUT  # noqa: N815

    def _answer(self, handler: Callable[[Any], dict[str, Any]], body: Any) -> None:
        try:
            answer = handler(body)
        except ApiError as error:
            self._error(HTTPStatus(error.status), error.message)
        except Exception as error:  # noqa: BLE001 - the server must go on; the log keeps the traceback
            log.exception("internal error answering %s", self.path)
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"internal error ({type(error).__name__})")
        else:
            self._send(HTTPStatus.OK, json.dumps(answer).encode(), "application/json")

    def _error(self, status: HTTPStatus, message: str) -> None:
        self._send(status, json.dumps({"error": message}).encode(), "application/json")

    def _send(self, status: HTTPStatus, data: bytes, kind: str) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)
        except ConnectionError:  # the client left: nothing to answer
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        log.info("%s %s", self.address_string(), format % args)


def make_server(api: ExplorerApi, host: str = "127.0.0.1", port: int = 8000) -> ThreadingHTTPServer:
    """A server bound to `host:port` (port 0: a free one; see `server.server_address`), not yet
    serving: call `serve_forever()` (and `shutdown()` from another thread to stop)."""
    server = ThreadingHTTPServer((host, port), partial(ExplorerHandler, api=api))
    server.daemon_threads = True
    return server
