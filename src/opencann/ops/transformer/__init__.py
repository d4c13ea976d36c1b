"""Operator family: transformer."""
