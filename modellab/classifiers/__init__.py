"""Response classifiers: a label and a short rationale for each response (see labels.py)."""
