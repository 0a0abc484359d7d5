"""The two ways the loader refuses: a file that is not an event log, options that do not fit."""

from model.errors import SeqcastError


class DataError(SeqcastError, ValueError):
    """The input is not a usable event log (one clear message naming the problem)."""


class OptionError(SeqcastError, ValueError):
    """A bad format name, column mapping or behavior mapping (the message names it)."""
