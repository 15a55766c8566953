"""Extract: pure reading of a call's request (providers) and result (outcome, usage)."""
