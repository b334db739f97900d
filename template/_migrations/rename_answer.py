"""Template migration: rename an answer in the answers file, in place (comments and order kept).

    python rename_answer.py OLD NEW [ANSWERS_FILE]

Run by `copier update` and `mlscaffold update` (copier.yml `_migrations`) in the project directory, before the new
version renders, so the renamed question finds its recorded answer. A no-op when OLD is absent or NEW exists.
Standard library only: it runs with whatever Python runs copier.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path


def rename(text: str, old: str, new: str) -> str:
    if re.search(rf"^{re.escape(new)}:", text, re.M):
        return text
    return re.sub(rf"^{re.escape(old)}:", f"{new}:", text, count=1, flags=re.M)


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    old, new = argv[0], argv[1]
    path = Path(argv[2] if len(argv) == 3 else ".copier-answers.yml")
    if not path.is_file():
        print(f"rename_answer: {path} not found", file=sys.stderr)
        return 1
    text = path.read_text(encoding="utf-8")
    renamed = rename(text, old, new)
    if renamed != text:
        path.write_text(renamed, encoding="utf-8")
        print(f"rename_answer: {old} -> {new} in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
