"""Every YAML and JSON file of the deployment parses."""

from __future__ import annotations

import json

from deployfiles import DEPLOY, ROOT, load_yaml_documents


def test_every_yaml_and_json_file_parses() -> None:
    yamls = [ROOT / "docker-compose.yml", *DEPLOY.rglob("*.yml"), *DEPLOY.rglob("*.yaml")]
    jsons = list(DEPLOY.rglob("*.json"))
    assert len(yamls) >= 12 and jsons
    for path in yamls:
        assert load_yaml_documents(path), f"{path} is empty"
    for path in jsons:
        assert isinstance(json.loads(path.read_text()), dict), path
