"""Every bound of the engine in one place, each with the reason for its value."""

# Requests waiting for the writer. At ~30k decisions/s this is ~0.3 s of work: a longer
# queue would only turn overload into timeouts, so callers get RESOURCE_EXHAUSTED instead.
QUEUE_MAX = 10_000

# Requests decided and committed in one transaction. 2,000 keeps one commit under ~50 ms on
# this machine's disk while amortising the fsync and the table lock over many requests.
BATCH_MAX = 2_000

# Cards kept in memory. A card state is ~0.5-2 kB; 200k cards is a few hundred MB at most.
CARD_CACHE_MAX = 200_000

# Request keys remembered in memory for fast replays (ledger/state.py KeyCache, ~370 bytes a
# key: ~185 MB when full); an older key is still found, at the cost of a conflict and a turn.
KEY_CACHE_MAX = 500_000

# Card numbers whose stream id (a uuid5: SHA-1 and a UUID, ~2 us) is remembered
# (ledger/codec.py card_stream_id): the cards in use, as many as the card cache holds. The
# memo is emptied when full; at ~220 bytes a card, 1,000,000 (the bound before) was 220 MB.
CARD_IDS_MAX = CARD_CACHE_MAX

# After a conflict with another process, the batch is decided again in this process's turn:
# with the log's write lock held (ledger/store.py `EventStore.turn`), so nobody else can commit
# between reading the log and committing. The longest wait for that lock: a commit holds it
# for milliseconds, so a wait this long means the database is overloaded (or a transaction is
# stuck); the callers then get RESOURCE_EXHAUSTED (DEADLINE_EXCEEDED once their deadline has
# passed), never UNAVAILABLE, since the database answered. A request's own deadline shortens
# the wait. PostgreSQL's idle_in_transaction_session_timeout (5 s) bounds the turn itself.
TURN_WAIT_MAX_S = 5.0

# Decisions made in a turn conflict only on a request key another process recorded without
# events meanwhile (a client's retry reaching two processes at once); each such conflict turns
# a request into a replay, so a batch needs as many turns as it has such retries, plus one.
# Past this many turns the rest of the batch is answered RESOURCE_EXHAUSTED (and logged).
TURN_CONFLICTS_MAX = 8

# A card's state is snapshotted every SNAPSHOT_INTERVAL events while it is small, less often as
# it grows, and at least every SNAPSHOT_INTERVAL_MAX events, so a cold load folds at most
# SNAPSHOT_INTERVAL_MAX - 1 events. Folding fewer events is what a cold batch waits for: at
# 100, a batch of cards with 44-56 events ran at 0.15x of warm; at 20, 0.43x
# (`python -m benchmarks.cold_batch --history 40`, PostgreSQL, same minutes). But a snapshot
# is the whole state, written (and its predecessor deleted) in the commit: at every 20 events,
# cards holding dozens of pending authorizations (3-10 kB) made the gateway Batch benchmark
# ~20 % slower than every 100 (`loyalty-ledger bench --only c`, alternated). So the interval
# grows with the state's size: one event for every SNAPSHOT_BYTES_PER_EVENT bytes of state,
# rounded up to a multiple of SNAPSHOT_INTERVAL (under 2 kB: 20; 4 kB: 40; 10 kB and more:
# 100); the size is known from the encoding, made only at every SNAPSHOT_INTERVAL-th event.
SNAPSHOT_INTERVAL = 20
SNAPSHOT_INTERVAL_MAX = 100
SNAPSHOT_BYTES_PER_EVENT = 100

# Replacement chains followed when routing an authorization to the card that holds it now.
REPLACEMENT_HOPS_MAX = 16

# Numbers a ReplaceCard without one tries (derived from its request, the first one free:
# ledger/handlers/cards.py replacement_numbers). A random 15-digit number is taken by chance
# about never; eight in a row taken means something else is wrong (as for IssueCard's).
REPLACEMENT_NUMBER_TRIES = 8

# Log rows read per query when following other processes' writes; after this many pages
# the card cache is dropped instead (cheaper than reading a huge backlog).
TAIL_PAGE_ROWS = 5_000
TAIL_PAGES_MAX = 4

# ListMovements page size.
MOVEMENTS_PAGE_DEFAULT = 100
MOVEMENTS_PAGE_MAX = 1_000

# Operations in one Batch message (the contract says 1..1000).
BATCH_OPERATIONS_MAX = 1_000

# Seconds to wait for a database connection before answering UNAVAILABLE.
DB_CONNECT_TIMEOUT_S = 3.0

# Versions beyond this are beyond any stream (and keep after_version + limit inside int64).
VERSION_MAX = 2**62

# On SIGTERM the server keeps taking calls until none has arrived for this long (calls a client
# had already sent would otherwise be cancelled), then stops; the whole drain is bounded by the
# stop's grace period.
DRAIN_QUIET_S = 0.2

# Compiled combinations of rule sets in force kept by the writer (alliance x partner x store
# scopes in force at once; a few per store at most). A miss costs a compile of ~1 ms.
RULE_COMBINATIONS_MAX = 256

# Rule sets one ListRuleSets reply holds.
RULE_SETS_PAGE_MAX = 1_000

# Cards the expiry job asks the writer about at once (well under QUEUE_MAX, so live traffic
# keeps room in the queue).
EXPIRY_CHUNK = 500

# How often `serve` runs the points expiry job by default (seconds; 0 = never).
EXPIRY_EVERY_S = 3_600

# Request keys are kept this long: the contract's retry window (a terminal retries a request
# for at most 7 days). A reversal's tombstone is kept as long: the original it declines was
# sent before the reversal, so its retries end within the window too. A retry after the
# window is a new request (documented in the README).
REQUEST_KEY_RETENTION_S = 7 * 24 * 3600

# Keys deleted per statement when pruning: a chunk is a short transaction (SQLite's write
# lock is held only that long), and a backlog is worked off chunk after chunk.
KEY_PRUNE_CHUNK = 5_000

# Log rows a projection applies in one transaction: large enough to amortise the commit
# (one fsync per batch instead of per event), small enough that a batch's rows are written
# well inside PostgreSQL's 5 s idle-in-transaction timeout and a reader waiting for the
# projection waits for at most one batch's work (~0.1 s here).
PROJECTION_BATCH_ROWS = 2_000

# How often a projection thread in `serve` looks at the log when nothing pokes it. Readers
# that need the projection current catch it up themselves, so this only bounds the backlog.
PROJECTION_POLL_S = 1.0

# Card states the movements projection reads per query (an IN list; SQLite's default limit
# of bound variables is 32,766).
PROJECTION_STATES_PER_QUERY = 500

# `loyalty-ledger import-cards` (ledger/card_import.py): lines sent to the writer as one
# chunk (the writer's batch, BATCH_MAX, so a chunk is about one transaction), and chunks in
# flight: while one commits the next is decided and the one after waits in the queue. At most
# (in flight + 1) chunks of requests are queued at once, 8,000, under QUEUE_MAX.
IMPORT_CHUNK_LINES = 2_000
IMPORT_CHUNKS_IN_FLIGHT = 3

# An import's request waits this long for the writer before it is given up (answered
# DEADLINE_EXCEEDED, reported as an error of its line; a rerun does it): a chunk takes ~0.1 s,
# so this only bounds a database that stopped answering.
IMPORT_REPLY_WAIT_S = 120.0

# Cards the importing process keeps in memory: a card is read again only by its own load,
# a few chunks after its issue, so the cache need only hold the chunks in flight; a smaller
# cache than a server's keeps the import's memory (and the garbage collector's work) flat.
IMPORT_CARD_CACHE_MAX = 20_000

# Bad lines an import lists one by one (the rest are counted): a file of a million bad lines
# should not print a million lines.
IMPORT_ERRORS_SHOWN = 1_000

# The importing process's cyclic garbage collector: at the default thresholds (700, 10, 10) it
# runs every few hundred allocations and its older generations scan the card cache again and
# again, a third of an import's CPU (py-spy: the time shows up at the allocations of
# CardState and of key tuples). An import's objects are freed by reference counting; cycles
# are rare, so collecting far less often loses nothing (measured: 6,700 -> 9,800 lines/s on
# PostgreSQL, a file with a load on every other line).
IMPORT_GC_THRESHOLDS = (50_000, 20, 100)

# The server's collector, for the same reason: the writer allocates a few dozen objects per
# operation (commands, events, replies) and frees nearly all of them by reference counting,
# while the card and request-key caches hold millions of long-lived objects that every
# older-generation pass walks again. At the default (700, 10, 10) the collector took ~15 % of
# the writer's CPU per authorization (`python -m benchmarks.writer_cpu --gc default`); what is
# loaded before the port opens is frozen out of every scan (gc.freeze).
SERVER_GC_THRESHOLDS = (20_000, 20, 100)

# ---- settlement payments and reconciliation (issue 9, section 4)
# Rows of one partner's journal file (the CLI reads it whole: ~60 bytes a row, ~12 MB) and
# movements of one partner's period on the ledger's side; a run records 8 bytes per break in
# one registry event, so together they bound that event at 3.2 MB.
RECONCILE_ROWS_MAX = 200_000
RECONCILE_LEDGER_ROWS_MAX = 200_000
# Rows inline in one gRPC Reconcile request: 10,000 rows of ~60 bytes stay far below the
# server's 8 MB message limit; a larger journal goes through the CLI.
RECONCILE_RPC_ROWS_MAX = 10_000
# Breaks listed in one Reconcile reply (the counts are always whole; the CLI lists them all):
# keeps the reply under the client's default 4 MB receive limit.
RECONCILE_REPLY_BREAKS_MAX = 1_000

# ---- tamper evidence (issue 10, section 2)
# A signed checkpoint every so many events of a partition, every so many seconds when the log
# is quieter, and at every settlement close. An event is protected from its checkpoint on:
# shorter intervals protect sooner and cost a signature (~50 us) and a row each; 10,000 events
# keep that under 0.1 % of the log's rows while a busy log is covered within seconds.
AUDIT_CHECKPOINT_EVENTS = 10_000
AUDIT_CHECKPOINT_S = 60.0
# The entities of an event (issuer, partner, store: projections/audit_entities.py): distinct
# (issuer, partner, store) triples whose entities are kept (a dict look-up costs a tenth of
# working them out again), cleared when full (stores times issuers: thousands); card streams
# whose issuer is kept (~150 bytes each) when they can be looked up again (one query: the
# stream's first event), cleared when full. An offline verifier keeps every issuer.
AUDIT_OWNERS_CACHE_MAX = 100_000
AUDIT_ISSUERS_MAX = 200_000

# ---- card partitions and their owners (issue 14)
# A card's partition is its stream id modulo this count, chosen once per database (the count
# is recorded on first use and every later process reads it back: a card never moves). 16
# gives each of up to 16 owner processes one partition, and keeps a partition's owner lease
# one advisory lock, far inside PostgreSQL's lock table.
PARTITIONS = 16
# An owner process looks at the leases this often; a partition without an owner for longer
# than the takeover delay is taken by a process that does not prefer it (its preferred owner
# gets the first chance, at start). Together they bound how long a dead owner's partitions
# stay without one: a request meanwhile is decided by the process that received it (safe,
# as before partitions: the log's versions and request keys), only not by its owner.
LEASE_POLL_S = 0.5
LEASE_TAKEOVER_S = 2.0
# A process takes no partition it does not prefer before it has run this long: the workers of
# one `serve --workers N` start together but not at once (numba's warm-up, a loaded machine),
# and a late one should find its own partitions free.
LEASE_STARTUP_S = 10.0
# `serve --workers N` starts a new worker in place of one that died; after this many deaths in
# a row within 30 s of their start it stops instead (a worker that cannot start would loop).
WORKER_RESTARTS_MAX = 5
# A forwarded request waits this long for its owner's socket to accept it before the
# receiving process decides it itself.
ROUTE_CONNECT_TIMEOUT_S = 1.0
# On SIGTERM a process waits this long for the owners to answer what it sent them, and its
# listener this long to send the replies it made, before the routes close (what is left is
# decided by the process that received it, a replay if its owner had committed it).
ROUTE_DRAIN_S = 5.0

# ---- the read models' follower
# `serve` starts `project` this much nicer than itself: the follower's work is never on a
# caller's path (a read catches its model up first), so on a busy machine the authorizations
# get the CPU first and the follower the rest. 0 gives both the same priority.
PROJECTOR_NICE = 10
