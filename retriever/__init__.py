"""Retriever service: per-knowledge-base FAISS and BM25 indexes behind an internal HTTP API."""
