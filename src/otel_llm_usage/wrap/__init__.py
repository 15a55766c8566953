"""Wrap: the wrapper shapes around LangChain's convergence points."""
