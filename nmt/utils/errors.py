"""The one exception type for mistakes a user can fix (files, config, command line)."""


class UserError(Exception):
    """Raised at the boundary with a one-line message naming the file, line or key.

    Entry points catch it and print the message instead of a traceback.
    """
