"""Business rules as pure code: commands, events, decide and evolve. No I/O, no clock.

Imports flow one way: `domain` imports nothing of ours; `ledger`, `projections` and `grpc_api`
import `domain`.
"""
