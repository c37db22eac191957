"""The exception root for CLARA Monitor; every package raises subclasses of ClaraError."""


class ClaraError(Exception):
    """Base of every error CLARA Monitor raises on purpose."""


class ConfigError(ClaraError):
    """The configuration is invalid: the message names the key, the value and what was expected."""


class EmbeddedMongoError(ClaraError):
    """The embedded mongod could not be started or stopped."""


class IndexPrivilegeError(ClaraError):
    """MongoDB refused the privilege to list or create an index CLARA needs: the message says the way out."""


class AccessDenied(ClaraError):
    """MongoDB refused the credentials or a privilege at start-up: retrying cannot help, someone must fix them."""
