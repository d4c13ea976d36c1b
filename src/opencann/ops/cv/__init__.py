"""Operator family: cv."""
