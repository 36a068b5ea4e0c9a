"""evocli: a command-line client for the Evolink chat completions API."""

__version__ = "0.1.0"
