"""Operator family: math."""
