"""Template tags for the participant pages."""
