"""The fleet view: every host of a fleet run in one table (`runbook fleet status DIR`)."""
