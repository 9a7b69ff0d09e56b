"""Inference service: grounded, streaming Jenkins answers from a llama.cpp model with retrieval over the corpus."""
