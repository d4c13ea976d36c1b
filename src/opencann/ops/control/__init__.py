"""Operator family: control."""
