"""Entry point for `python -m evocli`."""

from evocli.entry import main

main()
