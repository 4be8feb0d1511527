"""Errors raised on bad input. Every message names the input and what was expected."""

from __future__ import annotations


class PainfaceError(Exception):
    """Base class of every error painface raises on purpose."""


class InputError(PainfaceError, ValueError):
    """An input (array, file, option) is not what the function expects."""


class CorpusError(InputError):
    """A corpus on disk is missing, truncated, corrupt or inconsistent."""
