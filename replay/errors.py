"""The exception root for replay."""

from clara.errors import ClaraError


class ReplayError(ClaraError):
    """Base of every error replay raises on purpose."""


class UsageError(ReplayError):
    """The command line is wrong: the message says which option and why (exit code 2)."""


class Interrupted(ReplayError):
    """A stop was requested (Ctrl-C, SIGTERM); the current batch was finished first."""


class ShrinkRefused(UsageError):
    """A rebuild would remove the counts of reviews whose document is gone; --allow-shrink (exit code 2)."""
