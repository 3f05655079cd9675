"""lengthgen: length generalization of small decoder-only transformers."""

__version__ = "0.2.0"
