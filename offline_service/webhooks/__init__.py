"""Webhooks: endpoints an account registers, events written to an outbox in the transaction that
records them, and a sender that signs and delivers them (docs/WEBHOOKS.md)."""
