"""Console tools (`nmt-*` in pyproject.toml): each parses its arguments and calls the library;
a `UserError` ends in one `error: ...` line and exit status 2."""
