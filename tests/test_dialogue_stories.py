"""Rasa test stories (tests/stories/test_*.yml) against the current model (issue 7).

Each story is a whole conversation: the citizen's words as typed (the NLU must read
them as the story says, entities included) or a keyword payload, and every action
the assistant must take. `rasa test core --e2e` replays them with the model that
`make run` serves; it only predicts actions, so no action server is needed, and the
slots the actions would set are written in the stories. Covered: each capability's
happy path, and correction, cancel, fallback (both stages) and changing topic in the
middle of a form.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

from scripts.rasa_model import ensure_model

ROOT = Path(__file__).resolve().parent.parent
RASA = ROOT / ".venv-rasa" / "bin" / "rasa"
STORIES = ROOT / "tests" / "stories"
QUIET = {"RASA_TELEMETRY_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}


def test_every_test_story_is_followed_action_by_action(tmp_path: Path) -> None:
    assert sorted(STORIES.glob("test_*.yml")), "no test stories"
    model = ensure_model(quiet=True)
    command = [
        str(RASA), "test", "core", "--e2e", "--stories", str(STORIES), "--model", str(model),
        "--out", str(tmp_path), "--no-plot", "--fail-on-prediction-errors",
    ]
    result = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=900, env={**os.environ, **QUIET}
    )
    failed = tmp_path / "failed_test_stories.yml"
    details = failed.read_text() if failed.exists() else ""
    assert result.returncode == 0 and "WrongPredictionException" not in result.stderr, (
        f"a test story was not followed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}\n{details}"
    )
