"""Finance: figures a finance team reports from the ledger's records.

Pure code: no clock, no store. The ledger's read models supply the data; everything here is a
function of it.

    cohorts.py    the data IFRS 15 for points reads: Cohort (a program's points earned in a
                  period and what became of them by age), PeriodActivity (per-period totals)
                  and cohorts_from_activity; round_half_up, the one rounding rule
    estimates.py  expected redemptions per cohort and period: Method.PUBLISHED (finance's
                  rates) or Method.COHORT_RUNOFF (chain ladder on the cohorts' open points),
                  with the figures each estimate was made from
    ifrs15.py     allocation by relative stand-alone selling prices, recognition in
                  proportion to redemptions over expected redemptions (cumulative catch-up,
                  breakage), the contract liability schedule: ifrs15_report(...)
"""
