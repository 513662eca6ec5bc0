"""The commission rules of CONTRACT section 3 as plain Python: no I/O, no clock, no floats.

`rates` holds the versioned rate tables, `decisions` decides one order line,
`order_line` is the aggregate that owns an order line's ledger lines (accruals,
clawbacks, their lifecycle), `statements` totals lines for a partner's month.
"""
