"""Side effects of the journeys. Every activity is idempotent: each write carries the
workflow id plus the step as its idempotency key, guarded by a unique constraint."""
