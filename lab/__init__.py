"""The counterparts flywheel's tests and benchmarks run: real programs built from the registries, and named
stand-ins where the real one cannot be had here (see lab/README.md)."""
