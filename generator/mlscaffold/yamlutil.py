"""YAML loading as Kubernetes, Argo and CI tools read it: YAML 1.2 booleans, GitLab's `!reference` tag.

PyYAML is imported on first use, so importing this module (and the CLI) stays cheap.
"""

from __future__ import annotations

import functools
import re
from typing import Any


@functools.cache
def _loader() -> Any:
    import yaml

    class Yaml12Loader(yaml.SafeLoader):
        """A SafeLoader whose booleans are only true/false, so GitHub's `on:` stays the string "on"."""

    Yaml12Loader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    Yaml12Loader.add_implicit_resolver(
        "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
    )

    def reference(loader: yaml.SafeLoader, node: yaml.Node) -> list[Any]:
        assert isinstance(node, yaml.SequenceNode)
        return loader.construct_sequence(node)

    Yaml12Loader.add_constructor("!reference", reference)
    return Yaml12Loader


def load_all(text: str) -> list[Any]:
    """Every document of a YAML stream (empty documents dropped); raises yaml.YAMLError."""
    import yaml

    return [doc for doc in yaml.load_all(text, Loader=_loader()) if doc is not None]
