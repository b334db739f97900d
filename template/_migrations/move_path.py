"""Template migration: move a file or folder the template moved, keeping the user's content and git history.

    python move_path.py OLD NEW

Run by `copier update` and `mlscaffold update` (copier.yml `_migrations`) in the project directory, before the new
version renders. Uses `git mv` inside a git work tree. A no-op when OLD is absent or NEW already exists.
Standard library only: it runs with whatever Python runs copier.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    old, new = Path(argv[0]), Path(argv[1])
    if not old.exists() or new.exists():
        return 0
    new.parent.mkdir(parents=True, exist_ok=True)
    tracked = subprocess.run(["git", "ls-files", "--error-unmatch", str(old)], capture_output=True, check=False)
    if tracked.returncode == 0:
        subprocess.run(["git", "mv", str(old), str(new)], check=True)
    else:
        old.rename(new)
    print(f"move_path: {old} -> {new}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
