"""Backends behind one protocol (`base.Provider`): the embedded llama.cpp model and OpenAI-compatible endpoints."""
