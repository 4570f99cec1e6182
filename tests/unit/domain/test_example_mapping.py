"""The legacy mapping shipped in examples/multi-nas loads and names the default layout."""

from __future__ import annotations

from pathlib import Path

import yaml

from pacsync.domain.legacy_mapping import LegacyMapping

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "multi-nas" / "legacy-mapping.yaml"


def test_the_example_mapping_is_the_default_layout_with_a_path_prefix() -> None:
    loaded = LegacyMapping.model_validate(yaml.safe_load(EXAMPLE.read_text(encoding="utf-8")))
    default = LegacyMapping()
    assert loaded.patients == default.patients
    assert loaded.images.path_prefix == "Y:\\PACS\\"
    assert loaded.images.relative_path("Y:\\PACS\\2024\\01\\img.j2k") == "2024/01/img.j2k"
