"""What the generators of study material share: deduplication, reading answers, judges."""
