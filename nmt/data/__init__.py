"""Data: obtaining corpora, reading parallel text, and batching it."""
