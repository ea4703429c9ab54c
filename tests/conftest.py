"""Hypothesis: random exploration locally (new examples every run), a fixed example set under CI so that a
submission's result is reproducible. A counterexample found locally becomes an explicit test."""
import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
