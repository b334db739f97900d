"""mlscaffold: GitOps repository templates for machine-learning projects.

The public surface is small: :func:`new_project` renders a project, :class:`MlscaffoldError` is the base of every
error it raises on purpose, :class:`UserError` the ones caused by bad input. Importing the package imports neither
copier nor the engine: they load when a render needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlscaffold._version import __version__
from mlscaffold.errors import MlscaffoldError, UserError

if TYPE_CHECKING:
    from mlscaffold.engine import NewResult, new_project

__all__ = ["MlscaffoldError", "NewResult", "UserError", "__version__", "new_project"]


def __getattr__(name: str) -> Any:
    if name in ("NewResult", "new_project"):
        from mlscaffold import engine

        return getattr(engine, name)
    raise AttributeError(f"module 'mlscaffold' has no attribute {name!r}")
