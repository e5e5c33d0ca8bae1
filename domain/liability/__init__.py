"""Finance reports over the ledger's own records (issue 9, section 5): stored value and points
outstanding (liability), their roll-forward between two days, and breakage.

Pure code: the read model (projections/finance.py) sums every movement by UTC day; these
functions turn those sums into report rows.

    days.py         UTC days: parsing "YYYY-MM-DD" inputs, the day of a time
    access.py       who reads which entity's reports
    reports.py      liability, roll-forward and breakage rows from the day sums
"""
