"""Settlement between the alliance's accounting entities: what one owes another in a period
(obligations), the statements that net them, the instructions that settle the nets, and the
running net positions the net debit cap checks on the authorization path.

Pure code: no clock, no store, no threads. The ledger turns the legs of a period's movements
into `Obligation`s; everything here is a function of those and of the agreements' figures.

    model.py         Category, Obligation (validated on construction)
    statements.py    statements(obligations, period_id) -> StatementSet (with a digest)
    instructions.py  instructions(statement_set, voucher shares) -> Instruction rows;
                     outstanding(instructions, payments) -> what is left to pay
    positions.py     NetPositions: O(1) running net payable per entity and currency
    agreements.py    effective-dated agreements between entities (commission, caps, ...)
"""
