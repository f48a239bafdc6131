"""The stock use cases, one module per aggregate: `catalogue` (products, locations),
`levels` (stock records, level updates and changes, transfers, the ledger), `reservations`
(reserve, release and commit sales; retry backorders) and `integrity`.

Each takes plain values or domain types, returns domain types and refuses with
`fulfilkit.errors`. Those that take a pool own their transaction; those that take a
connection run in their caller's, which commits them with what it records beside them
(an Idempotency-Key's answer, an inbox entry).
"""
