"""Record: a call's outcome turned into spans, metrics, prices and totals."""
