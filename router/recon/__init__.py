"""Reconciliation: each channel account's statement of a day held against the record
(docs/reconciliation.md). `engine` matches, `fix` wires it to the router, `schedule` runs it
every morning in one router process."""
