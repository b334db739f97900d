"""A data sample for a new project (``new --data-sample FILE --target COL``): its contract, inferred before anything
is written, and its copy into the render.

The inference itself lives once, in the template: ``template/src/{{ package_name }}/infer_schema.py`` is the
module the generated project runs as ``python -m <package> infer-schema``; this module loads that same file from
the template being rendered (or the bundled one, for a remote template) and calls it.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from mlscaffold import template as tpl
from mlscaffold.errors import UserError

INFERENCE_MODULE = Path("template", "src", "{{ package_name }}", "infer_schema.py")
SAMPLE_PATH = Path("data", "sample.csv")


def inference_module(template_root: str | None = None) -> ModuleType:
    """The template's inference module, loaded from its file (it imports nothing from the generated package)."""
    root = Path(template_root) if template_root and (Path(template_root) / INFERENCE_MODULE).is_file() else None
    path = (root or tpl.bundled_template()) / INFERENCE_MODULE
    name = "_mlscaffold_infer_schema"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UserError(f"cannot load the schema inference of the template from {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class Sample:
    """A data sample the render copies: the file and the contract inferred from it."""

    path: Path
    contract: Any
    module: ModuleType

    def copy_into(self, render: Path) -> None:
        """Write the sample into the render as data/sample.csv (its header renamed as the contract says)."""
        self.module.write_sample(self.path, self.contract, render / SAMPLE_PATH)


def default_target(config: Mapping[str, Any] | None = None) -> str:
    """The default of the ``target`` answer: copier.yml's (``config``, else the bundled template's)."""
    config = config if config is not None else tpl.read_config(str(tpl.bundled_template()))
    return str(((config or {}).get("target") or {}).get("default") or "")


def prepare(
    answers: dict[str, Any], template_root: str | None, config: Mapping[str, Any] | None = None
) -> Sample | None:
    """Infer the contract of ``answers['data_sample']`` (when given) and record it in ``answers``.

    Returns the sample to copy into the render, or None for a project without a data sample.
    Every problem with the file or the target is a :class:`UserError`, raised before anything is rendered
    (the one check that a target comes with a data sample, whether from --target, --data or --data-file).
    """
    given = str(answers.get("data_sample") or "").strip()
    if not given:
        if answers.get("target") not in (None, "", default_target(config)):  # the default alone says nothing
            raise UserError(
                f"target '{answers['target']}' needs a data sample: pass --data-sample FILE (the table it is a "
                "column of) with it"
            )
        return None
    module = inference_module(template_root)
    path = Path(given).expanduser()
    problem_type = answers.get("problem_type")
    try:
        contract = module.infer(path, str(answers.get("target") or default_target(config)), problem_type)
    except module.SampleError as exc:
        raise UserError(str(exc)) from None
    answers["data_sample"] = path.name
    answers["target"] = contract.target.name
    answers["problem_type"] = contract.problem_type  # the sample decided it: copier does not ask it again
    answers["data_contract"] = {
        "problem_type": contract.problem_type,
        "thresholds": dict(contract.thresholds),
        "rows": contract.rows,
        "source": path.name,
        "table": contract.table(),
        "example": dict(contract.example),
        "schema": contract.to_yaml(),
    }
    return Sample(path, contract, module)


def carry_over(answers: Mapping[str, Any], root: Path, commit: str, render: Path, env: Mapping[str, str]) -> None:
    """An update's render of a data-sample project gets the sample of ``commit`` (the base render), byte for byte.

    The template cannot render the sample (the file it came from is gone): without this, the three-way merge
    would see the template remove data/sample.csv, and delete the user's data.
    """
    if not answers.get("data_sample"):
        return
    shown = subprocess.run(
        ["git", "show", f"{commit}:{SAMPLE_PATH.as_posix()}"],
        cwd=root,
        capture_output=True,
        check=False,
        env={**os.environ, **env},
    )
    if shown.returncode == 0:
        (render / SAMPLE_PATH).parent.mkdir(parents=True, exist_ok=True)
        (render / SAMPLE_PATH).write_bytes(shown.stdout)
