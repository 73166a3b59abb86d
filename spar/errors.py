"""The one exception type for a user's mistake.

A `UserError` is bad input or a bad setting: its message names the value,
where it came from (file:line, the config key or the flag) and the fix.
`spar` prints it as one line and exits with status 2. Any other exception
escaping a command is a bug in spar: the CLI shows its traceback and says so.

`UserError` is a `ValueError`, so library callers that catch `ValueError`
keep working. Pure Python, the bottom layer: everything may import it.
"""

from __future__ import annotations


class UserError(ValueError):
    """Bad input or configuration; the message says what, where, and how to fix it."""
