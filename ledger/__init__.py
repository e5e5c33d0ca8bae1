"""The engine: event store, codec, batching writer, idempotency keys, snapshots."""
