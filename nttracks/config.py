"""YAML configs read into frozen, typed dataclasses.

A config says which track families to build and how (window, overlap, stitching, batching), and
how to label the hub. Unknown keys and values of the wrong type are errors that name the key and
the file. The resolved config (every default filled in) is written beside the outputs.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

import yaml

from .errors import ConfigError
from .resources import resource_dir

STITCH_MODES = ("taper", "nearest", "mean")
PRECISIONS = ("auto", "fp32", "bf16")
# Families with a model today; enhancer activity and variant sensitivity join when their models land.
FAMILIES = ("toy", "elements")


@dataclass(frozen=True)
class FamilyConfig:
    """How one track family is built.

    checkpoint: local directory or HuggingFace id of the model (None for the built-in toy model).
    window: window length in bp (None: the model's default).
    overlap: bp shared by neighbouring windows (None: half a window).
    stitch: how overlapping windows are combined: taper (centre-favouring weights), nearest
        (each base from the window whose centre is nearest) or mean.
    batch_size: windows per forward pass.
    precision: fp32, bf16, or auto (bf16 on a GPU, fp32 on the CPU).
    """

    checkpoint: str | None = None
    window: int | None = None
    overlap: int | None = None
    stitch: str = "taper"
    batch_size: int = 8
    precision: str = "auto"


@dataclass(frozen=True)
class HubConfig:
    """Labels of the hub as the browsers show it."""

    name: str = "nttracks"
    short_label: str = "nttracks"
    long_label: str = "Nucleotide Transformer predictions (nttracks)"
    email: str = "nttracks@example.org"


@dataclass(frozen=True)
class Config:
    """A whole run's configuration. ``families`` maps a family name to its settings, in config order."""

    families: Mapping[str, FamilyConfig] = field(default_factory=lambda: types.MappingProxyType({}))
    hub: HubConfig = field(default_factory=HubConfig)
    source: str = "<defaults>"

    def to_dict(self) -> dict[str, Any]:
        """The resolved config as plain data (what is written beside the outputs)."""
        return {
            "hub": dataclasses.asdict(self.hub),
            "families": {name: dataclasses.asdict(fam) for name, fam in self.families.items()},
        }

    def to_yaml(self) -> str:
        return f"# resolved from {self.source}\n" + yaml.safe_dump(self.to_dict(), sort_keys=False)


def load_config(path: Path | str) -> Config:
    """Read a YAML config. Raises ConfigError naming the file and key on any problem."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} does not exist; pass an existing YAML file to --config"
        ) from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return parse_config(data if data is not None else {}, source=str(path))


def parse_config(data: Any, *, source: str = "<config>") -> Config:
    """Build a Config from plain data (as YAML gives it), checking every key and type."""
    top = _mapping(data, "", source, ("hub", "families"))
    hub = _build(HubConfig, top.get("hub", {}), "hub", source)
    raw_families = _mapping(top.get("families", {}), "families", source, None)
    families: dict[str, FamilyConfig] = {}
    for name, raw in raw_families.items():
        if name not in FAMILIES:
            raise ConfigError(
                f"{source}: families.{name}: unknown track family; known families: {', '.join(FAMILIES)}"
            )
        fam = _build(FamilyConfig, raw if raw is not None else {}, f"families.{name}", source)
        _check_family(fam, f"families.{name}", source)
        families[name] = fam
    if not families:
        raise ConfigError(f"{source}: no track families configured; add one under 'families:'")
    return Config(families=types.MappingProxyType(families), hub=hub, source=source)


def config_for_genome(name: str) -> Path:
    """The ready config of a registered genome (``configs/<name>.yaml``), else ``configs/default.yaml``."""
    configs = resource_dir("configs")
    own = configs / f"{name}.yaml"
    return own if own.is_file() else configs / "default.yaml"


def _mapping(data: Any, where: str, source: str, known: tuple[str, ...] | None) -> dict[str, Any]:
    if not isinstance(data, dict):
        place = where or "top level"
        raise ConfigError(
            f"{source}: {place}: expected a mapping of keys to values, got {type(data).__name__}"
        )
    for key in data:
        if not isinstance(key, str):
            raise ConfigError(f"{source}: {where or 'top level'}: key {key!r} is not a string")
        if known is not None and key not in known:
            raise ConfigError(
                f"{source}: {_join(where, key)}: unknown key; known keys here: {', '.join(known)}"
            )
    return data


def _build(cls: type, data: Any, where: str, source: str) -> Any:
    hints = get_type_hints(cls)
    names = tuple(f.name for f in fields(cls))
    raw = _mapping(data, where, source, names)
    values = {}
    for key, value in raw.items():
        values[key] = _check_type(value, hints[key], _join(where, key), source)
    return cls(**values)


def _check_type(value: Any, hint: Any, where: str, source: str) -> Any:
    allowed = get_args(hint) if get_origin(hint) in (Union, types.UnionType) else (hint,)
    for typ in allowed:
        if typ is type(None) and value is None:
            return None
        # bool is an int in Python; a config "window: true" is a mistake, not 1.
        if typ is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if typ is str and isinstance(value, str):
            return value
    names = " or ".join("null" if t is type(None) else t.__name__ for t in allowed)
    raise ConfigError(f"{source}: {where}: expected {names}, got {value!r} ({type(value).__name__})")


def _check_family(fam: FamilyConfig, where: str, source: str) -> None:
    if fam.stitch not in STITCH_MODES:
        raise ConfigError(f"{source}: {where}.stitch: {fam.stitch!r} is not one of {', '.join(STITCH_MODES)}")
    if fam.precision not in PRECISIONS:
        raise ConfigError(
            f"{source}: {where}.precision: {fam.precision!r} is not one of {', '.join(PRECISIONS)}"
        )
    if fam.batch_size < 1:
        raise ConfigError(f"{source}: {where}.batch_size: must be at least 1, got {fam.batch_size}")
    if fam.window is not None and fam.window < 1:
        raise ConfigError(f"{source}: {where}.window: must be a positive number of bp, got {fam.window}")
    if fam.overlap is not None and fam.overlap < 0:
        raise ConfigError(f"{source}: {where}.overlap: must be >= 0 bp, got {fam.overlap}")


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key
