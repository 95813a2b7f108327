"""Command lines: each module has ``main(argv=None) -> int`` and runs nothing at import."""
