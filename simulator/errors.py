"""The simulator's exception root."""

from clara.errors import ClaraError


class SimulatorError(ClaraError):
    """The simulator cannot go on (MongoDB unreachable, for example)."""
