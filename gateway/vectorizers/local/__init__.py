"""The local vectorizer: phrase tables (data) + numbers and people (grammar). See vectorizer.py."""

from gateway.vectorizers.local.vectorizer import LocalVectorizer, default_tables, extract_features

__all__ = ["LocalVectorizer", "default_tables", "extract_features"]
