"""Outbound work on RQ: plan touches, enqueue each once, place the calls."""
