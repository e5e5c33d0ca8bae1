"""Entry points: the `loyalty-ledger` command (cli) and the demo's client simulator (demo).

The top of the import graph: these modules may import every package of ours, and only they
import `benchmarks` (for `loyalty-ledger bench`); nothing imports them (tests/test_layout.py).
"""
