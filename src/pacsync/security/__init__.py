"""Secrets at rest, API keys, tokens and signatures: the cryptography pacsync relies on."""
