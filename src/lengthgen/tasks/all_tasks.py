"""Importing this module registers every task family."""

from . import sparse  # noqa: F401
from . import algorithmic  # noqa: F401
from . import coupled  # noqa: F401
from . import formal  # noqa: F401
from . import language  # noqa: F401
