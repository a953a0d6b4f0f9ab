"""YAML configs read into frozen, typed dataclasses.

A config says which track families to build and how (window, overlap, stitching, batching, and each
family's own keys), and how to label the hub. Each family's settings schema is its own dataclass, in
its module under ``nttracks/families/``. Unknown keys and values of the wrong type are errors that
name the key and the file. The resolved config (every default filled in) is written beside the outputs.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

import yaml

from .errors import ConfigError, UsageError
from .families import WindowSettings, check_window_settings, registered
from .resources import resource_dir

# UCSC: a hub's shortLabel "should be under 20 characters", its longLabel "under 70" (reference/hubs.md §1.1).
HUB_SHORT_LABEL_MAX = 19
HUB_LONG_LABEL_MAX = 69


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

    families: Mapping[str, WindowSettings] = field(default_factory=lambda: types.MappingProxyType({}))
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
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except _DuplicateKey as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return parse_config(data if data is not None else {}, source=str(path))


def parse_config(data: Any, *, source: str = "<config>") -> Config:
    """Build a Config from plain data (as YAML gives it), checking every key and type."""
    top = _mapping(data, "", source, ("hub", "families"))
    hub = _build(HubConfig, top.get("hub", {}), "hub", source)
    _check_hub(hub, source)
    raw_families = _mapping(top.get("families", {}), "families", source, None)
    known = registered()
    families: dict[str, WindowSettings] = {}
    for name, raw in raw_families.items():
        family = known.get(name)
        if family is None:
            raise ConfigError(
                f"{source}: families.{name}: unknown track family; known families: {', '.join(known)}"
            )
        where = f"families.{name}"
        settings = _build(family.settings, raw if raw is not None else {}, where, source)
        check_window_settings(settings, where, source)
        family.check(settings, where, source)
        families[name] = settings
    if not families:
        raise ConfigError(f"{source}: no track families configured; add one under 'families:'")
    return Config(families=types.MappingProxyType(families), hub=hub, source=source)


def with_annotation(config: Config, annotation: Path | str) -> Config:
    """``config`` with every family that summarizes its tracks over an annotation (whose settings have an
    ``annotation`` key) reading the BED ``annotation`` (``--annotation``). UsageError when the file is missing
    or no configured family has such a key."""
    path = Path(annotation).expanduser()
    if not path.is_file():
        raise UsageError(f"--annotation {annotation}: no such file; give a BED of element classes")
    takes = {name for name, s in config.families.items() if "annotation" in _field_names(s)}
    if not takes:
        takers = [n for n, f in registered().items() if "annotation" in _field_names(f.settings)]
        raise UsageError(
            f"--annotation {annotation}: none of the configured families ({', '.join(config.families)}) summarizes "
            f"its tracks over an annotation; {', '.join(takers)} do"
        )
    families = {
        name: dataclasses.replace(s, annotation=str(path.resolve())) if name in takes else s
        for name, s in config.families.items()
    }
    return dataclasses.replace(config, families=types.MappingProxyType(families))


def _field_names(settings: Any) -> set[str]:
    return {f.name for f in fields(settings)}


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
        if get_origin(typ) is tuple and isinstance(value, list):  # tuple[X, ...]: a YAML list of X
            item = get_args(typ)[0]
            return tuple(_check_type(v, item, f"{where}[{i}]", source) for i, v in enumerate(value))
        # bool is an int in Python; a config "window: true" is a mistake, not 1.
        if typ is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if typ is str and isinstance(value, str):
            return value
        if typ is bool and isinstance(value, bool):
            return value
        if typ is float and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    names = " or ".join(_type_name(t) for t in allowed)
    raise ConfigError(f"{source}: {where}: expected {names}, got {value!r} ({type(value).__name__})")


def _type_name(typ: Any) -> str:
    if typ is type(None):
        return "null"
    if get_origin(typ) is tuple:
        return f"a list of {_type_name(get_args(typ)[0])}"
    return typ.__name__


def _check_hub(hub: HubConfig, source: str) -> None:
    """The hub's name and labels as the browsers require them (checked before any compute)."""
    from .catalog import GENOME_RE

    if not GENOME_RE.fullmatch(hub.name) or hub.name[0] in ".-":
        raise ConfigError(
            f"{source}: hub.name: {hub.name!r} must be one word of letters, digits, '_', '.' and '-', "
            "not starting with '.' or '-' (e.g. my_hub)"
        )
    for key, value, limit in (
        ("short_label", hub.short_label, HUB_SHORT_LABEL_MAX),
        ("long_label", hub.long_label, HUB_LONG_LABEL_MAX),
        ("email", hub.email, 0),
    ):
        if not value.strip() or not value.isprintable() or value != value.strip():
            raise ConfigError(
                f"{source}: hub.{key}: {value!r} must be printable text on one line, without outer spaces"
            )
        if key != "email" and len(value) > limit:
            raise ConfigError(
                f"{source}: hub.{key}: {value!r} has {len(value)} characters; browsers show at most {limit}"
            )


class _DuplicateKey(yaml.YAMLError):
    pass


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last one silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            line = key_node.start_mark.line + 1
            if key in seen:
                raise _DuplicateKey(
                    f"line {line}: key {key!r} appears twice in one mapping (first on line {seen[key]}); "
                    "remove one of them"
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key
