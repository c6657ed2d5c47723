"""Operator endpoints: plans, and (with later issues) vetting, audit, alerts and jobs."""
