"""Patch: what is wrapped in LangChain (and next to other instrumentations)."""
