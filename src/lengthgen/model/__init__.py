"""The transformer and its positional schemes."""

from .positional import SCHEMES, PositionalScheme, make_scheme, register_scheme
from .transformer import Transformer, TransformerConfig

__all__ = ["Transformer", "TransformerConfig", "PositionalScheme", "SCHEMES", "make_scheme", "register_scheme"]
