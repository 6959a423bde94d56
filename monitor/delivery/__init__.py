"""Delivery: the outbox dispatcher and one module per target format (`standard` for now)."""
