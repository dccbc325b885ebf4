"""runbook: an interactive remediation runbook for software supply-chain incidents."""

__version__ = "0.1.0"
