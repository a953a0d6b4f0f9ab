"""Track families as plug-ins: everything a family is, declared in its own module.

A family (``toy``, ``elements``, ``enhancer``, ``sensitivity``, ``attention``) is a ``Family``
subclass in ``nttracks/families/<name>.py`` that says, in one place:

- ``settings``: its frozen settings dataclass, i.e. the keys it accepts under ``families.<name>`` in a
  config (a key of another family, such as ``checkpoint`` under ``toy``, is an error naming key and file);
- ``geometry(settings)``: its window geometry, known without loading weights;
- ``channels(settings)``: its output channels (they may depend on the settings);
- ``preflight(settings, geometry, dry_run=)``: what loading will need, checked before any compute;
- ``load(settings, geometry, device)``: its model on the device, with the checkpoint digest and a label;
- ``weights_digest(settings)``: that digest without loading the model (a run's fingerprints need it
  before deciding what to compute);
- ``flops(settings, lengths)``: the forward FLOPs of windows of these lengths, for the dry run;
- ``summarize(settings, tracks)``: optionally, a ``Summary`` of its finished bigWigs (e.g. per element
  class of an annotation) for its description pages and the manifest;
- ``model_summary(settings, geometry, genome, contigs, device)``: optionally, a ``Summary`` its model makes
  over the run's genome rather than from its tracks (e.g. ``sensitivity``'s embedding map);
- its catalog entry and description page: ``trackhubs/catalog.yaml`` and ``trackhubs/<name>.html`` for
  the built-in families, or ``catalog_entry`` and ``html_template`` on the class for a family that
  lives elsewhere (a plug-in, or a family defined in a test).

The registry below lists the families; config, planning, runs, hubs and the catalog iterate over it.
This module imports no torch: a family imports its model code inside ``load``.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..bases import Geometry
from ..errors import ConfigError, ModelError

STITCH_MODES = ("taper", "nearest", "mean")
PRECISIONS = ("auto", "fp32", "bf16")
# modules of nttracks.families, imported on first use of the registry
BUILTIN = ("toy", "elements", "enhancer", "sensitivity", "attention")


@dataclass(frozen=True)
class WindowSettings:
    """Settings every family shares: how its windows are laid and combined.

    window: window length in bp (None: the model's default).
    overlap: bp shared by neighbouring windows (None: half a window).
    stitch: how overlapping windows are combined: taper (centre-favouring weights), nearest
        (each base from the window whose centre is nearest) or mean.
    batch_size: windows per forward pass (None: on a GPU the most that fit in its free memory, measured
        when the model is loaded; 8 on the CPU). ``--batch-size`` overrides it for every family.
    """

    window: int | None = None
    overlap: int | None = None
    stitch: str = "taper"
    batch_size: int | None = None


@dataclass(frozen=True)
class CheckpointSettings(WindowSettings):
    """Settings of a family whose model comes from a checkpoint.

    checkpoint: local directory (HF layout) or HuggingFace id of the model.
    precision: fp32, bf16, or auto (bf16 on a GPU, fp32 on the CPU).
    compile: run the model through ``torch.compile`` (static shapes: one graph per window length).
        Compiling takes a minute or more once per run; it pays on a GPU over a genome, not on a demo.
    """

    checkpoint: str = ""
    precision: str = "auto"
    compile: bool = False


@dataclass(frozen=True)
class LoadedModel:
    """A family's model ready to run: the module on its device, its weights' digest and a label."""

    model: Any  # a TrackModel (torch.nn.Module)
    digest: str
    label: str


@dataclass(frozen=True)
class Summary:
    """What a family says about its finished tracks.

    html: a fragment for the family's description pages; files: {file name: bytes} written beside the
    pages (a picture the fragment shows by that name); data: plain data for the manifest.
    """

    html: str
    files: Mapping[str, bytes]
    data: Mapping[str, Any]


class Family:
    """Base class of a track family; subclasses override what differs (see the module docstring)."""

    name: ClassVar[str]
    settings: ClassVar[type[WindowSettings]] = WindowSettings
    summary: ClassVar[str] = ""  # one line, shown where families are listed
    catalog_entry: ClassVar[Mapping[str, Any] | None] = None  # None: in trackhubs/catalog.yaml
    html_template: ClassVar[str | None] = None  # None: trackhubs/<catalog html>

    def geometry(self, settings: Any) -> Geometry:
        raise NotImplementedError

    def channels(self, settings: Any) -> tuple[str, ...]:
        raise NotImplementedError

    def check(self, settings: Any, where: str, source: str) -> None:
        """Raise ConfigError (naming ``source`` and ``where``.key) for a value this family cannot use."""

    def preflight(self, settings: Any, geometry: Geometry, *, dry_run: bool) -> list[str]:
        """Check, before any compute, what loading will need (a checkpoint's presence and shape); raise
        ModelError naming what is wrong, or return notes for the user. A dry run must write nothing (no
        download); a real run may fetch what it needs here."""
        return []

    def load(self, settings: Any, geometry: Geometry, device: Any) -> LoadedModel:
        raise NotImplementedError

    def weights_digest(self, settings: Any) -> str:
        """The digest ``load`` reports, without loading the model when the family can (override it);
        this default loads the model on the CPU and asks it."""
        import torch

        return self.load(settings, self.geometry(settings), torch.device("cpu")).digest

    def flops(self, settings: Any, lengths: np.ndarray) -> float:
        """Forward FLOPs of windows of ``lengths`` bp (0: negligible, e.g. the toy models)."""
        return 0.0

    def summarize(self, settings: Any, tracks: Mapping[str, Any]) -> Summary | None:
        """A summary of the finished bigWigs ``tracks`` ({channel: path}), or None (the default: none).
        Called after every track of the family is written; it reads them, never the model."""
        return None

    def model_summary(self, settings: Any, geometry: Geometry, genome: Any, contigs: Any,
                      device: Any) -> Summary | None:
        """A summary the family's model makes over the run's genome (a ``Genome``; ``contigs``: the N-free
        runs of the run's chromosomes) on ``device``, or None (the default: none). Called after
        ``summarize``; its html follows that summary's on the pages and its files lie beside them."""
        return None

    def describe(self, settings: Any, geometry: Geometry, overlap: int) -> dict[str, Any]:
        """The resolved settings as the description pages and the manifest show them."""
        return {**dataclasses.asdict(settings), "window": geometry.window, "overlap": overlap}


_registry: dict[str, Family] = {}
_builtins_loaded = False


def register(family: Family, *, replace: bool = False) -> Family:
    """Add ``family`` to the registry (``replace``: allow a family of the same name to be replaced)."""
    name = getattr(family, "name", None)
    if not isinstance(name, str) or not name.isidentifier():
        raise ModelError(f"a track family needs a name that is an identifier, got {name!r}")
    if not (isinstance(family.settings, type) and issubclass(family.settings, WindowSettings)):
        raise ModelError(f"track family {name}: settings must be a WindowSettings dataclass")
    _load_builtins()
    if name in _registry and not replace and _registry[name] is not family:
        raise ModelError(f"a track family named {name!r} is already registered")
    _registry[name] = family
    return family


register_family = register  # the name nttracks' public surface re-exports


def unregister(name: str) -> None:
    """Remove a family from the registry (tests that register their own use this to clean up)."""
    _registry.pop(name, None)


def registered() -> Mapping[str, Family]:
    """Every registered family by name: the built-ins first, in ``BUILTIN`` order (whichever module was
    imported first), then the others in registration order."""
    _load_builtins()
    order = [n for n in BUILTIN if n in _registry] + [n for n in _registry if n not in BUILTIN]
    return {name: _registry[name] for name in order}


def get_family(name: str) -> Family:
    """The registered family ``name``; ConfigError listing the known ones otherwise."""
    families = registered()
    if name not in families:
        raise ConfigError(f"unknown track family {name!r}; known families: {', '.join(families)}")
    return families[name]


def _load_builtins() -> None:
    global _builtins_loaded
    if _builtins_loaded:
        return
    _builtins_loaded = True
    for module in BUILTIN:
        importlib.import_module(f"{__name__}.{module}")


def torch_dtype(precision: str, device: Any) -> Any:
    """The precision policy of checkpoint families: bf16 on a GPU unless fp32 is asked for."""
    import torch

    bf16 = precision == "bf16" or (precision == "auto" and getattr(device, "type", "cpu") == "cuda")
    return torch.bfloat16 if bf16 else torch.float32


def compiled(model: Any, settings: CheckpointSettings) -> Any:
    """``model`` through ``torch.compile`` when the settings ask for it (static shapes), else as is.

    The compiled module keeps the model's ``channels``, ``geometry`` and ``check_window``.
    """
    if not settings.compile:
        return model
    import warnings

    import torch

    with warnings.catch_warnings():  # torch's own deprecated internals, imported by the first compile
        warnings.simplefilter("ignore", DeprecationWarning)
        fast = torch.compile(model, dynamic=False)
    for name in ("channels", "geometry", "check_window"):
        if hasattr(model, name):
            object.__setattr__(fast, name, getattr(model, name))
    return fast


def check_window_settings(settings: WindowSettings, where: str, source: str) -> None:
    """The checks shared by every family's settings."""
    if settings.stitch not in STITCH_MODES:
        raise ConfigError(
            f"{source}: {where}.stitch: {settings.stitch!r} is not one of {', '.join(STITCH_MODES)}"
        )
    if settings.batch_size is not None and settings.batch_size < 1:
        raise ConfigError(f"{source}: {where}.batch_size: must be at least 1, got {settings.batch_size}")
    if settings.window is not None and settings.window < 1:
        raise ConfigError(f"{source}: {where}.window: must be a positive number of bp, got {settings.window}")
    if settings.overlap is not None and settings.overlap < 0:
        raise ConfigError(f"{source}: {where}.overlap: must be >= 0 bp, got {settings.overlap}")
    if isinstance(settings, CheckpointSettings):
        if settings.precision not in PRECISIONS:
            raise ConfigError(
                f"{source}: {where}.precision: {settings.precision!r} is not one of {', '.join(PRECISIONS)}"
            )
        if not settings.checkpoint.strip():
            raise ConfigError(f"{source}: {where}.checkpoint: empty; give a checkpoint directory or HF id")
