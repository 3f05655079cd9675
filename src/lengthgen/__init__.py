"""lengthgen: length generalization of small decoder-only transformers.

`lengthgen.results(root, experiment=None)`: stored metrics as a tidy pandas DataFrame.
"""

__version__ = "0.2.0"
PUBLIC = ("results",)  # defined in lengthgen.api, imported on first use: `import lengthgen` stays light


def __getattr__(name: str):
    if name in PUBLIC:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'lengthgen' has no attribute {name!r}")
