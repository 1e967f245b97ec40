"""Runnable examples (``examples/configs/`` holds YAML configs for the CLI)."""
