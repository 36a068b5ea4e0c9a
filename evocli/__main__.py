"""Entry point for `python -m evocli`."""

from evocli.cli import main

main()
