"""``python -m jepa_lightning`` runs the CLI."""

from jepa_lightning.cli import main

main()
