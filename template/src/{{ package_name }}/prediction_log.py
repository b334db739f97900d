"""Sampled prediction logging: features + prediction + model version, one JSON object a line.

The serving hot path only appends a pre-serialised line to an in-memory buffer (for the sampled share of
requests); the buffer goes to the file in one `write` when it is full, every few seconds (a task of the app)
and at shutdown. A failing sink never fails a request: the records are counted as dropped and a warning is
logged once. `read_window` turns the log (a file, or a folder of `*.jsonl` files) into the `drift` step's
current window.

One line:
    {"ts": 1760000000.123, "model_version": "3", "features": {...}, "prediction": 1, "score": 0.91}
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pandas is imported by read_window only: the server writes the log without it
    import pandas as pd

logger = logging.getLogger(__name__)

DEFAULT_SAMPLE_RATE = 0.1
DEFAULT_BUFFER_RECORDS = 256
DEFAULT_MAX_MB = 100.0


class PredictionLog:
    """A buffered JSONL sink for a sample of the predictions (not thread-safe: one event loop owns it)."""

    def __init__(
        self,
        path: Path | None,
        sample_rate: float = DEFAULT_SAMPLE_RATE,
        buffer_records: int = DEFAULT_BUFFER_RECORDS,
        max_mb: float = DEFAULT_MAX_MB,
        counter: Any = None,
        seed: int | None = None,
    ) -> None:
        if not 0.0 <= sample_rate <= 1.0:
            raise ValueError(f"prediction log sample rate must be in [0, 1], got {sample_rate}")
        self.path = path
        self.sample_rate = sample_rate
        self.enabled = path is not None and sample_rate > 0
        self.buffer_records = max(1, buffer_records)
        self.max_bytes = int(max_mb * 1024 * 1024)
        self._buffer: list[str] = []
        self._random = random.Random(seed).random
        self._written = counter.labels("written") if counter is not None else None
        self._dropped = counter.labels("dropped") if counter is not None else None
        self._warned = False

    def sampled(self) -> bool:
        """Whether to log this request (call once per request)."""
        return self.enabled and (self.sample_rate >= 1.0 or self._random() < self.sample_rate)

    def add(
        self,
        records: Sequence[Mapping[str, Any]],
        predictions: Sequence[Any],
        scores: Sequence[float],
        model_version: str | None,
    ) -> None:
        """Buffer one line per record; write the buffer when it is full."""
        now = round(time.time(), 3)
        dumps = json.dumps
        for record, prediction, score in zip(records, predictions, scores, strict=True):
            self._buffer.append(
                dumps(
                    {
                        "ts": now,
                        "model_version": model_version,
                        "features": record,
                        "prediction": prediction,
                        "score": score,
                    },
                    separators=(",", ":"),
                )
            )
        if len(self._buffer) >= self.buffer_records:
            self.flush()

    def flush(self) -> int:
        """Write the buffered lines in one call; return how many were written."""
        if not self._buffer or self.path is None:
            return 0
        lines, self._buffer = self._buffer, []
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._rotate()
            with self.path.open("a", encoding="utf-8") as sink:
                sink.write("\n".join(lines) + "\n")
        except OSError as exc:
            if self._dropped is not None:
                self._dropped.inc(len(lines))
            if not self._warned:
                logger.warning("prediction log %s is not writable (%s): dropping sampled records", self.path, exc)
                self._warned = True
            return 0
        if self._written is not None:
            self._written.inc(len(lines))
        return len(lines)

    def _rotate(self) -> None:
        """Keep the log below max_mb: the full file moves to <name>.1 (replacing an older one)."""
        assert self.path is not None
        try:
            if self.path.stat().st_size >= self.max_bytes:
                os.replace(self.path, self.path.with_name(self.path.name + ".1"))
        except FileNotFoundError:
            pass


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(path.glob("*.jsonl"), key=lambda p: p.stat().st_mtime)
    rotated = path.with_name(path.name + ".1")
    return [p for p in (rotated, path) if p.is_file()]


def read_window(path: Path, max_rows: int | None = None) -> pd.DataFrame:
    """The logged features as a DataFrame: the newest `max_rows` records of a log file (or folder of logs)."""
    lines: list[str] = []
    for file in _files(path):
        lines += [line for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
    if max_rows:
        lines = lines[-max_rows:]
    rows = []
    for number, line in enumerate(lines, 1):
        try:
            rows.append(json.loads(line)["features"])
        except (ValueError, KeyError, TypeError):
            logger.warning("%s: skipping a malformed line (%d of the window)", path, number)
    import pandas as pd

    return pd.DataFrame.from_records(rows)
