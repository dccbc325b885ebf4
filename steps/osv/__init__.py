"""OSV malicious-package advisories turned into playbooks (`runbook new --from-osv`)."""
