"""Errors whose message is meant for the person who typed the command."""


class UserFacingError(Exception):
    """Raised by services and cogs; the tree's error handler shows the message, ephemerally.

    The message says what was wrong and what to do about it.
    """
