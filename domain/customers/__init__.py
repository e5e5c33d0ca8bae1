"""Customer views (issue 10, section 1): pure computations over a customer's activity.

Everything here takes plain rows (`activity.Activity`: who, where, which local day and hour,
visits, net spend and margin in minor units) that the read model (projections/customers.py)
keeps, and returns plain structs a table, CSV, JSON, a chart or a page can use. No I/O, no
clock: the as-of day is passed in. Money is integers in minor units; shares are basis points.
"""
