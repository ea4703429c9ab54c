"""The four decisions of the split, as pure functions from tables to tables (no I/O, no clock, no globals)."""
