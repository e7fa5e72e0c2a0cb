"""Replay, what-if and backfill for engineers (issue 19)."""
