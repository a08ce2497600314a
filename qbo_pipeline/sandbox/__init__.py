"""The embedded QBO-compatible sandbox: a local QBO v3 API on loopback.

It serves the real paths, envelopes, faults, query language, paging, CDC, batch, OAuth2 and
realism switches of QuickBooks Online, from a SQLite state file, so that a client written for the
real QBO works against it unchanged. Product code never imports this package; the CLI, the Dagster
definitions and the tests start it.
"""
