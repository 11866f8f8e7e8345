"""The pure rules of notifications: profiles, subscriptions, retries and webhook messages (no I/O)."""
