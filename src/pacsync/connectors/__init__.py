"""Connectors: one folder per external system, each implementing the ports."""
