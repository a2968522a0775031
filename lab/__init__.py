"""Counterparts the tests and the e2e lab run: real programs built from the registries, and named stand-ins."""
