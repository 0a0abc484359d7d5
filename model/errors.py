"""Errors a user can act on: the CLI prints their message alone, without a traceback."""


class SeqcastError(Exception):
    """Base of the errors whose message tells the user what to fix."""
