"""Loopwise: an OpenAI-compatible LLM proxy that learns from user feedback."""

__version__ = "0.1.0"
