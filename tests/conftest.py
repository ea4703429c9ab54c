"""Hypothesis: random exploration locally (new examples every run), a fixed example set under CI so that a
submission's result is reproducible. A counterexample found locally becomes an explicit test."""

import os

from hypothesis import settings

# An unexpected error while checking a trust's file becomes that trust's rejection in production; under test
# it is raised, so that a bug in the pipeline fails loudly (tests of the conversion itself unset this).
os.environ.setdefault("TRP_RAISE_FAULTS", "1")

settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
