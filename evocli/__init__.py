"""evocli: a command-line client for the Evolink chat completions API."""

__version__ = "0.1.0"


def version_line() -> str:
    """What `evocli --version` prints."""
    return f"evocli {__version__}\n"
