"""The counterparts tests and benchmarks run: real programs built from the registries, and named stand-ins."""
