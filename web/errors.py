"""Errors of the web package and the one middleware that renders every error as the same JSON shape:

    {"error": {"status": 400, "parameter": "from", "message": "..."}}

`parameter` names the offending query parameter, or is null when the error is not about one.
"""

from __future__ import annotations

import logging

from aiohttp import web
from pymongo.errors import PyMongoError

from clara.errors import ClaraError

log = logging.getLogger(__name__)


class WebError(ClaraError):
    """Base of the errors the web package raises on purpose."""


class BadParameter(WebError):
    """A query parameter is missing its form, out of range, repeated or unknown (HTTP 400)."""

    def __init__(self, parameter: str, message: str):
        super().__init__(f"{parameter}: {message}")
        self.parameter, self.message = parameter, message


class MissingAssets(WebError):
    """The dashboard's npm packages are not installed."""


def error_body(status: int, message: str, parameter: str | None = None) -> dict:
    return {"error": {"status": status, "parameter": parameter, "message": message}}


def error_response(status: int, message: str, parameter: str | None = None,
                   headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(error_body(status, message, parameter), status=status, headers=headers)


@web.middleware
async def error_middleware(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except BadParameter as exc:
        return error_response(400, exc.message, exc.parameter)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {key: value for key, value in exc.headers.items() if key.lower() in ("www-authenticate", "allow")}
        return error_response(exc.status, exc.text if exc.text and exc.text != f"{exc.status}: {exc.reason}"
                              else exc.reason, headers=headers or None)
    except PyMongoError as exc:
        log.warning("%s %s: MongoDB unavailable: %s", request.method, request.path, exc)
        return error_response(503, f"MongoDB is unavailable: {type(exc).__name__}")
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return error_response(500, "internal error; see the server log")
