"""Every error the core raises on purpose, in one leaf module (it imports nothing of the project), so any layer
can raise or catch them without importing the layer that defines the concept.

Each message names the file, column or setting and what to do. They subclass the builtin a caller would expect
(ValueError for bad input, TypeError for an unencodable dtype, RuntimeError for a refused batch), so existing
`except ValueError` code keeps working. The modules they belong to re-export them under the same names.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """The config file is missing or wrong; the message names the file and the setting."""


class TableReadError(ValueError):
    """A file could not be read as a table; the message names the file and the fix."""


class LandingReadError(TableReadError):
    """A landed file could not be read; `code` is the quarantine reason (unsupported_format, encoding, ...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class SchemaError(ValueError):
    """Raised when a table cannot be modelled; the message names the column and what to do."""


class SplitError(ValueError):
    """The table or the split settings cannot be split; the message names the column or setting."""


class ProvenanceError(ValueError):
    """Rows and origins do not fit together; the message says which column or count."""


class CanonicalError(TypeError):
    """A column has a dtype without a canonical encoding; the message names it."""


class GeneratorError(ValueError):
    """A generator was misused or misconfigured; the message says which setting or call and what to do."""


class ImageDataError(ValueError):
    """The image source cannot be read; the message names the file and what to do."""


class GateRefusal(RuntimeError):
    """A batch without a passing verdict was offered to training; the message says which and why."""


class DatasetError(ValueError):
    """A dataset of several tables is inconsistent (unknown parent, a cycle, a missing or null key); the message
    names the table, the column and what to do."""
