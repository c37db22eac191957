"""The exception root for CLARA Monitor; every package raises subclasses of ClaraError."""


class ClaraError(Exception):
    """Base of every error CLARA Monitor raises on purpose."""


class ConfigError(ClaraError):
    """The configuration is invalid: the message names the key, the value and what was expected."""


class EmbeddedMongoError(ClaraError):
    """The embedded mongod could not be started or stopped."""
