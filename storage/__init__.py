"""Persistence: SQLAlchemy models and repositories, conversation state stores, and crypto."""
