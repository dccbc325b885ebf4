"""The players' app of an exercise (`runbook exercise start`)."""
