"""A study's datasets for researchers: exports described by their codebook."""
