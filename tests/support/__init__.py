"""What the tests share: the alliance, cards, credentials and a movable clock (alliance),
databases (databases), a server on a thread and calls over real gRPC (rpc), server processes
and CLI runs (processes)."""
