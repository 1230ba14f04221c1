"""Kept for the BEIR evaluation while it moves to the index package: BM25 lives in index.lexical."""

from index.lexical import BM25Index

__all__ = ["BM25Index"]
