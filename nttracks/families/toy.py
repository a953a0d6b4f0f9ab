"""The ``toy`` family: built-in models whose output is a known function of the sequence (for tests and checks).

``model`` picks one of them (``nttracks.models.toy``): ``base_identity`` (A, C, G, T one-hot and the
6-mer GC fraction ``gc6``), ``context_gc`` (GC fraction of a ±50-bp neighbourhood inside the window:
depends on the window's context), ``token_gc`` (one value per 6-mer token) or ``window_gc`` (one value
per window). The stitched tracks of every one of them can be computed by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..bases import Geometry
from ..errors import ConfigError
from . import Family, LoadedModel, WindowSettings, register

MODELS = ("base_identity", "context_gc", "token_gc", "window_gc")


@dataclass(frozen=True)
class ToySettings(WindowSettings):
    """model: base_identity | context_gc | token_gc | window_gc."""

    model: str = "base_identity"


class ToyFamily(Family):
    name = "toy"
    settings = ToySettings
    summary = "built-in toy models with outputs known by hand (tests)"

    def _model_class(self, settings: ToySettings) -> Any:
        from ..models.toy import TOY_MODELS

        return TOY_MODELS[settings.model]

    def check(self, settings: ToySettings, where: str, source: str) -> None:
        if settings.model not in MODELS:
            raise ConfigError(f"{source}: {where}.model: {settings.model!r} is not one of {', '.join(MODELS)}")

    def geometry(self, settings: ToySettings) -> Geometry:
        from ..models.toy import TOY_GEOMETRY

        return self._model_class(settings)(TOY_GEOMETRY).geometry

    def channels(self, settings: ToySettings) -> tuple[str, ...]:
        return tuple(self._model_class(settings).channels)

    def weights_digest(self, settings: ToySettings) -> str:
        return "builtin"

    def load(self, settings: ToySettings, geometry: Geometry, device: Any) -> LoadedModel:
        model = self._model_class(settings)(geometry).to(device)
        return LoadedModel(model, self.weights_digest(settings), f"toy {settings.model} model")


register(ToyFamily())
