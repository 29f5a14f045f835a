"""Errors that the command line prints as one line (``lightning-mad: error: <message>``), never as a traceback."""
from __future__ import annotations


class ConfigError(ValueError):
    """A config file, setting or command-line argument that cannot be used; the message names it."""
