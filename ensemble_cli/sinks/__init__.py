"""Sinks: subscribers to a session's events (JSONL records, the Rich display, plain outputs on stdout)."""
