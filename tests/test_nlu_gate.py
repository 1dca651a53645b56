"""The NLU gate of `make test` (issue 7): the current model on the held-out set.

The model is the one `make run` serves (scripts/rasa_model.ensure_model: trained once,
cached by the hash of its inputs); tests/nlu/heldout.yml is never trained on.
scripts/eval_nlu.py runs in Rasa's own environment and writes its figures as JSON;
`make eval-nlu` prints the same figures for config.yml and its pipeline variants.
A drop below the bar fails the suite and names the confusions to look at.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from scripts.rasa_model import ensure_model

ROOT = Path(__file__).resolve().parent.parent
RASA_PYTHON = ROOT / ".venv-rasa" / "bin" / "python"
# Issue 15 made Rasa cheaper on the promise of the same understanding: the bar is the
# held-out macro-F1 the pipeline had then (0.955), not a looser one.
MIN_MACRO_F1 = 0.955
QUIET = {"RASA_TELEMETRY_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}

# The messages of issue 7, as a feature-phone user writes them (the NIK is joined by
# the webhook before the NLU sees it). They are in the held-out set, not in nlu/.
FEATURE_PHONE_MESSAGES = [
    ("sy blm trima pkh thp 3", {"file_complaint"}),
    ("kpn cair min", {"ask_disbursement_schedule"}),
    ("kks sy d pegang pendamping", {"file_complaint"}),
    ("nik ibu sy 3301024507710003", {"inform", "check_status"}),
]
# Messages without a single known word are asked back (nlu_components/unknown_words.py),
# however confident DIET is: two in a row hand the chat to an officer.
GIBBERISH = ["xqzv wplk", "asdfghjkl", "brrr zzkt qwp", "🙏🙏"]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    model = ensure_model(quiet=True)
    out = tmp_path_factory.mktemp("nlu-gate")
    command = [
        str(RASA_PYTHON), "scripts/eval_nlu.py", "--model", str(model), "--out", str(out),
        "--json", str(out / "gate.json"), "--no-plot",
    ]
    result = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=900, env={**os.environ, **QUIET}
    )
    assert result.returncode == 0, f"eval_nlu.py failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    return json.loads((out / "gate.json").read_text())


def confusions(report: dict[str, Any]) -> str:
    lines = [
        f"{pair['count']} x {pair['gold']} -> {pair['predicted']}: "
        + "; ".join(repr(text) for text in pair["examples"])
        for pair in report["confusions"][:15]
    ]
    return "\n".join(lines) or "(none)"


def test_heldout_intent_macro_f1_is_no_lower_than_before(report: dict[str, Any]) -> None:
    assert report["examples"] >= 15 * report["intents"]
    assert report["macro_f1"] >= MIN_MACRO_F1, (
        f"held-out macro-F1 {report['macro_f1']:.3f} < {MIN_MACRO_F1} "
        f"(accuracy {report['accuracy']:.3f}). Confusions, gold -> predicted:\n{confusions(report)}"
    )


@pytest.mark.parametrize("entity", ["nik", "ticket_ref"])
def test_every_nik_and_reference_is_extracted_exactly(report: dict[str, Any], entity: str) -> None:
    scores = report["entities"][entity]
    assert scores["examples"] >= 10
    assert scores["accuracy"] == 1.0, f"{entity} misses: {scores['misses']}"


@pytest.mark.parametrize("text, intents", FEATURE_PHONE_MESSAGES, ids=[t for t, _ in FEATURE_PHONE_MESSAGES])
def test_feature_phone_messages_from_the_issue_are_understood(
    report: dict[str, Any], text: str, intents: set[str]
) -> None:
    found = {p["text"]: p for p in report["predictions"]}
    assert text in found, f"{text!r} is missing from tests/nlu/heldout.yml"
    assert found[text]["final"] in intents, found[text]


@pytest.mark.parametrize("text", GIBBERISH)
def test_gibberish_is_asked_back(report: dict[str, Any], text: str) -> None:
    found = {p["text"]: p for p in report["unclear"]}
    assert found[text]["final"] == "nlu_fallback", found[text]
