"""Zero-Shot Studio engines: models and algorithms, usable without the UI."""

__version__ = "0.1.0"
