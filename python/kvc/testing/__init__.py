"""Helpers for kvc's execution tests."""
