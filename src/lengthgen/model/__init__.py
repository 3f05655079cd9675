"""The transformer, its positional schemes, the stacked (ensemble) layers and the positional penalty."""

from .positional import SCHEMES, PositionalScheme, make_scheme, register_scheme
from .transformer import Output, Transformer

__all__ = ["Output", "Transformer", "PositionalScheme", "SCHEMES", "make_scheme", "register_scheme"]
