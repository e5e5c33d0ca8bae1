"""Reconciliation of a partner's own records against the ledger (issue 9, section 4).

Pure code: no clock, no store. The ledger side is handed in as rows read from the log.

    journal.py   JournalRow (the exact columns of the partner's file, and their checks), the
                 CSV reader that names the line and the column of every bad value
    matching.py  match(file rows, ledger rows) -> every row in exactly one class, the breaks
                 with stable ids, counts, the file's digest
    export.py    the ledger's own per-store, per-day, per-type totals (and rows) for the
                 partner to check on its side
    decide.py    the commands that record a run and resolve a break, who may, and the
                 registry's book of runs and breaks
"""
