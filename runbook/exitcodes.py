"""Exit codes shared by every command."""

OK = 0  # done
FAILED = 1  # a step failed, findings remain, or a check failed
USAGE = 2  # usage or validation error, or a confirmation nobody could give
INTERRUPTED = 130  # Ctrl-C
