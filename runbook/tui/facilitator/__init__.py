"""The facilitator console of an exercise (`runbook exercise facilitate RUN`)."""
