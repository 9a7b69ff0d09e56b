"""Retrieval over the Jenkins corpus: chunking, embeddings, the FAISS (+ BM25) index and its builder."""
