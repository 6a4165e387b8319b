"""Hashing, tokens and (later) encryption at rest."""
