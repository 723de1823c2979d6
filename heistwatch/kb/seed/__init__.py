"""Loaders that turn open data shipped in packages, and the claims pack, into import batches."""
