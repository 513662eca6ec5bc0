"""Use cases of the commissions service, over the ports in `ports`.

`ingest` turns a batch of consumed events into ledger changes and the records to
produce; `lifecycle` runs payables and marks statements paid through the outbox;
`relay` publishes the outbox; `queries` and `rate_tables` serve the API.
"""
