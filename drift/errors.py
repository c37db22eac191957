"""Errors of the drift package, under CLARA's exception root."""

from clara.errors import ClaraError


class DriftError(ClaraError):
    """Base of the errors the drift package raises on purpose."""


class WebhookError(DriftError):
    """A webhook could not be configured or a delivery failed."""


class TransientWebhookError(WebhookError):
    """A delivery failed in a way that may succeed later: refused, timed out, 5xx, 408 or 429."""
