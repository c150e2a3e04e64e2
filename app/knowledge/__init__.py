"""Knowledge core: embedding, the Chroma + BM25 index, the manifest and hybrid retrieval."""

COLLECTIONS = ("articles", "conversations")


def chroma_name(collection: str) -> str:
    """Chroma collection name of a logical collection (``articles`` → ``kb_articles``)."""
    return f"kb_{collection}"
