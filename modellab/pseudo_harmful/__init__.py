"""Pseudo-harmful prompts: a generator writes, targets refuse, a judge and people check."""
