"""Query–scenario sets written by a generator model, checked by an intent judge and by people."""
