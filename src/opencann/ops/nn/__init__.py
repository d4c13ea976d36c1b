"""Operator family: nn."""
