"""flywheel's CrossGuard policy pack (importable; policies/__main__.py only assembles the pack)."""
