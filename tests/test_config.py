"""YAML configs: defaults, unknown keys and wrong types named with their file, round trip."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from nttracks.config import Config, HubConfig, load_config, parse_config
from nttracks.errors import ConfigError
from nttracks.families.elements import ElementsSettings
from nttracks.families.toy import ToySettings


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


def test_defaults() -> None:
    config = parse_config({"families": {"toy": None}})
    assert list(config.families) == ["toy"]
    assert config.families["toy"] == ToySettings()
    fam = config.families["toy"]
    assert (fam.window, fam.overlap, fam.stitch, fam.batch_size, fam.model) == (
        None, None, "taper", None, "base_identity",
    )
    elements = parse_config({"families": {"elements": None}}).families["elements"]
    assert (elements.checkpoint, elements.precision) == ("InstaDeepAI/segment_nt", "auto")
    assert config.hub == HubConfig()
    assert config.source == "<config>"


def test_load_full_config(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
hub:
  name: myhub
  short_label: My hub
families:
  elements:
    checkpoint: InstaDeepAI/segment_nt
    window: 3072
    overlap: 1536
    stitch: nearest
    batch_size: 4
    precision: bf16
  toy: {}
""",
    )
    config = load_config(path)
    assert config.source == str(path)
    assert list(config.families) == ["elements", "toy"]  # config order
    expected = ElementsSettings(
        window=3072, overlap=1536, stitch="nearest", batch_size=4, checkpoint="InstaDeepAI/segment_nt", precision="bf16"
    )
    assert config.families["elements"] == expected
    assert config.hub.name == "myhub" and config.hub.short_label == "My hub"
    assert config.hub.email == HubConfig().email
    with pytest.raises(TypeError):
        config.families["new"] = ToySettings()  # type: ignore[index]


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("families: {toy: {}}\nwindow: 12\n", "window"),
        ("families: {toy: {}}\nhub: {colour: red}\n", "hub.colour"),
        ("families: {toy: {windw: 1200}}\n", "families.toy.windw"),
    ],
)
def test_unknown_key(tmp_path: Path, text: str, key: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError, match=re.escape(f"{path}: {key}: unknown key")):
        load_config(path)


@pytest.mark.parametrize(
    ("family", "key", "got"),
    [
        ({"window": "1200"}, "families.toy.window", "'1200'"),
        ({"window": 1200.0}, "families.toy.window", "1200.0"),
        ({"batch_size": True}, "families.toy.batch_size", "True"),
        ({"overlap": False}, "families.toy.overlap", "False"),
        ({"stitch": 1}, "families.toy.stitch", "1"),
        ({"model": ["a"]}, "families.toy.model", "['a']"),
    ],
)
def test_wrong_type(family: dict, key: str, got: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"x.yaml: {key}: expected")) as info:
        parse_config({"families": {"toy": family}}, source="x.yaml")
    assert got in str(info.value)


def test_wrong_type_in_hub_and_structure() -> None:
    with pytest.raises(ConfigError, match=r"hub\.name: expected str"):
        parse_config({"families": {"toy": {}}, "hub": {"name": 3}})
    with pytest.raises(ConfigError, match="top level: expected a mapping"):
        parse_config(["families"])
    with pytest.raises(ConfigError, match="families: expected a mapping"):
        parse_config({"families": ["toy"]})
    with pytest.raises(ConfigError, match=r"families\.toy: expected a mapping"):
        parse_config({"families": {"toy": 3}})
    with pytest.raises(ConfigError, match="key 1 is not a string"):
        parse_config({"families": {"toy": {1: 2}}})


def test_unknown_family() -> None:
    with pytest.raises(ConfigError, match=r"c\.yaml: families\.enhancers: unknown track family"):
        parse_config({"families": {"enhancers": {}}}, source="c.yaml")


@pytest.mark.parametrize(
    ("family", "message"),
    [
        ({"stitch": "median"}, r"families\.toy\.stitch: 'median' is not one of taper, nearest, mean"),
        ({"batch_size": 0}, r"families\.toy\.batch_size: must be at least 1"),
        ({"window": 0}, r"families\.toy\.window: must be a positive"),
        ({"overlap": -6}, r"families\.toy\.overlap: must be >= 0"),
    ],
)
def test_bad_values(family: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config({"families": {"toy": family}})


@pytest.mark.parametrize(
    ("family", "message"),
    [
        ({"precision": "fp16"}, r"families\.elements\.precision: 'fp16' is not one of auto, fp32, bf16"),
        ({"checkpoint": " "}, r"families\.elements\.checkpoint: empty"),
        ({"model": "base_identity"}, r"families\.elements\.model: unknown key"),
    ],
)
def test_bad_elements_values(family: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config({"families": {"elements": family}})


def test_a_key_of_another_family_is_an_error_naming_key_and_file() -> None:
    with pytest.raises(ConfigError, match=r"^c\.yaml: families\.toy\.checkpoint: unknown key; known keys here: "):
        parse_config({"families": {"toy": {"checkpoint": "x"}}}, source="c.yaml")
    with pytest.raises(ConfigError, match=r"c\.yaml: families\.toy\.model: 'gc' is not one of base_identity"):
        parse_config({"families": {"toy": {"model": "gc"}}}, source="c.yaml")

def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=re.escape(f"config file {path} does not exist")):
        load_config(path)


def test_unreadable_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        load_config(tmp_path)  # a directory


def test_invalid_yaml(tmp_path: Path) -> None:
    path = _write(tmp_path, "families: {toy: [\n")
    with pytest.raises(ConfigError, match=re.escape(f"{path}: not valid YAML")):
        load_config(path)


@pytest.mark.parametrize("text", ["", "# nothing\n", "families: {}\n", "hub: {name: x}\n"])
def test_no_families(tmp_path: Path, text: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError, match=re.escape(f"{path}: no track families configured")):
        load_config(path)


def test_to_yaml_round_trip(tmp_path: Path) -> None:
    config = parse_config(
        {
            "hub": {"name": "h", "long_label": "Long: label with 'quotes'"},
            "families": {
                "toy": {"window": 996, "overlap": 0},
                "elements": {"checkpoint": "/models/seg", "stitch": "mean", "precision": "fp32"},
            },
        },
        source="orig.yaml",
    )
    text = config.to_yaml()
    assert text.startswith("# resolved from orig.yaml\n")
    again = parse_config(yaml.safe_load(text), source="orig.yaml")
    assert again == config
    assert list(again.families) == ["toy", "elements"]
    # Through a file as well: every default is written out and read back.
    path = _write(tmp_path, text)
    loaded = load_config(path)
    assert loaded.families == config.families and loaded.hub == config.hub
    assert yaml.safe_load(text)["families"]["toy"]["batch_size"] is None  # null: automatic
    assert isinstance(Config().families, type(config.families))


def test_a_family_without_a_model_yet_is_rejected_by_name() -> None:
    message = r"families\.splicing: unknown track family; known families: toy, elements, enhancer"
    with pytest.raises(ConfigError, match=message):
        parse_config({"families": {"splicing": {}}}, source="c.yaml")
