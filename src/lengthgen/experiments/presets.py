"""Presets: the experiment files shipped inside the package (`lengthgen/presets/*.yaml`, package
data, so that an installed wheel runs them by name), found beside a user's own `./presets/`."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from ..config import ConfigError


def shipped_dir() -> Path:
    """The package's own presets (a folder: wheels install unzipped)."""
    return Path(str(files("lengthgen") / "presets"))


def preset_dirs() -> list[Path]:
    """Where a preset name is looked up, first match wins: ./presets/, then the package's own."""
    return [Path.cwd() / "presets", shipped_dir()]


def preset_names() -> list[str]:
    return sorted({f.stem for d in preset_dirs() if d.is_dir() for f in d.glob("*.yaml")})


def find_preset(name: str) -> Path:
    """An experiment file: a path, or a preset name (with or without `.yaml`)."""
    path = Path(name)
    if path.is_file():
        return path
    for folder in preset_dirs():
        for candidate in (folder / name, folder / f"{name}.yaml"):
            if candidate.is_file():
                return candidate
    raise ConfigError(f"no experiment file or preset {name!r}; presets: {', '.join(preset_names()) or '(none found)'}")
