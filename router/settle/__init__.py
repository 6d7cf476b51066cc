"""T+1 settlement (docs/reconciliation.md "Settlement"): per merchant, currency and mode, a
day's reconciled lines become one settlement, its lines and its ledger posting.

`compute` is the arithmetic (pure), `run` settles a day against the record
(`router.record.settlements` holds the SQL).
"""

from router.settle.compute import Key, Totals, settle
from router.settle.run import Outcome, parse_day, settle_day, yesterday

__all__ = ["Key", "Outcome", "Totals", "parse_day", "settle", "settle_day", "yesterday"]
