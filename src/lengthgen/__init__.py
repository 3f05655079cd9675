"""lengthgen: length generalization of small decoder-only transformers.

`lengthgen.results(root, experiment=None)`: stored metrics as a tidy pandas DataFrame.
`lengthgen.load(run, root=...)`: a finished run's model, with `generate` and `predict` on task strings.
"""

from .version import __version__

__all__ = ["__version__", "results", "load"]
PUBLIC = ("results", "load")  # defined in lengthgen.api, imported on first use: `import lengthgen` stays light


def __getattr__(name: str):
    if name in PUBLIC:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'lengthgen' has no attribute {name!r}")
