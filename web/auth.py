"""Optional access control: with CLARA_API_TOKEN (Bearer) and/or CLARA_BASIC_AUTH (user:password)
configured, every route but /healthz needs one of them. Browsers use Basic (EventSource sends it
along); scripts and Prometheus may use either."""

from __future__ import annotations

import base64
import binascii
import hmac

from aiohttp import web

from clara.config import WebSettings

OPEN_PATHS = frozenset({"/healthz"})
REALM = 'Basic realm="CLARA Monitor", charset="UTF-8"'


def authorized(header: str, settings: WebSettings) -> bool:
    scheme, _, credentials = header.partition(" ")
    scheme, credentials = scheme.lower(), credentials.strip()
    if scheme == "bearer" and settings.api_token:
        return hmac.compare_digest(credentials.encode(), settings.api_token.encode())
    if scheme == "basic" and settings.basic_auth:
        try:
            decoded = base64.b64decode(credentials, validate=True)
        except (binascii.Error, ValueError):
            return False
        return hmac.compare_digest(decoded, settings.basic_auth.encode())
    return False


def auth_middleware(settings: WebSettings):
    """A middleware that refuses unauthenticated requests with 401, or None when no credentials are set."""
    if not (settings.api_token or settings.basic_auth):
        return None
    challenge = REALM if settings.basic_auth else 'Bearer realm="CLARA Monitor"'

    @web.middleware
    async def middleware(request: web.Request, handler) -> web.StreamResponse:
        if request.path not in OPEN_PATHS and not authorized(request.headers.get("Authorization", ""), settings):
            raise web.HTTPUnauthorized(text="authentication required: a Bearer token or Basic credentials",
                                       headers={"WWW-Authenticate": challenge})
        return await handler(request)

    return middleware
