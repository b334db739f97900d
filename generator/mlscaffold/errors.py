"""The errors mlscaffold raises on purpose: one base class, one for bad input.

The CLI maps both to a one-line message on stderr and exit code 1; anything else is a bug.
"""


class MlscaffoldError(Exception):
    """Base of every error mlscaffold raises on purpose."""

    exit_code = 1


class UserError(MlscaffoldError):
    """Bad input (an answer, a path, a flag): the message names the bad value and what would be valid."""
