"""HTTP API: one router module per concept, combined in ``app.main``."""
