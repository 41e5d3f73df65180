"""SMAC-style battle simulator."""
