"""Tests of a trust's files."""
