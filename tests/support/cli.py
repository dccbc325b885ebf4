"""The real `runbook` CLI with the test step kinds registered, as a plugin would do it."""

import sys

from runbook.cli import main
from tests.support.kinds import register

register()
sys.exit(main())
