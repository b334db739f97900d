"""mlscaffold: GitOps repository templates for machine-learning projects.

The public surface is small: :func:`new_project` renders a project, :class:`MlscaffoldError` is the base of every
error it raises on purpose, :class:`UserError` the ones caused by bad input.
"""

from mlscaffold.engine import NewResult, new_project
from mlscaffold.errors import MlscaffoldError, UserError

__version__ = "0.1.0"

__all__ = ["MlscaffoldError", "NewResult", "UserError", "__version__", "new_project"]
