"""The package version: one place, imported by the package and the modules that record it."""

__version__ = "0.2.0"
