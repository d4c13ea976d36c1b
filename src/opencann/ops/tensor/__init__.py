"""Operator family: tensor."""
