"""Exit codes shared by every command."""

OK = 0  # done
FAILED = 1  # a step failed, findings remain, or a check failed
USAGE = 2  # usage or validation error, or a confirmation nobody could give
# Finished, nothing compromised or at risk found, but something could not be checked (a file that
# could not be read or parsed): never "clean". `runbook scan` and a headless `runbook run`.
UNCHECKED = 3
INTERRUPTED = 130  # Ctrl-C
