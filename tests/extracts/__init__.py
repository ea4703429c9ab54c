"""Tests of extracts."""
