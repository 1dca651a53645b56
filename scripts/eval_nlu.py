"""Measure the NLU on the held-out set, and compare pipeline variants.

Run with Rasa's Python (`make eval-nlu` does):

    .venv-rasa/bin/python scripts/eval_nlu.py               # config.yml and its variants
    .venv-rasa/bin/python scripts/eval_nlu.py --model M.tar.gz --json out.json --no-plot

Training reads `nlu/` only; the held-out set `tests/nlu/heldout.yml` is written apart
from it and never trained on. For every pipeline it prints per-intent precision,
recall and F1, the most frequent confusions, the exact-match accuracy of the `nik`
and `ticket_ref` entities (per example: the set of values found must be the set
annotated), and how often the FallbackClassifier would ask back at other
thresholds. It writes report.md, report.json and confusion.png per pipeline under
reports/nlu/ (git-ignored), and reports/nlu/comparison.md.

Pipelines: `config.yml` as it is (the full model, trained and cached by
scripts/rasa_model.ensure_model, the same model `make run` and the tests use), and
variants derived from it by one change each (no character n-grams; with or without
the Sastrawi stemmer). Variants are trained NLU-only (`rasa train nlu`) and cached
beside the full models, keyed by the variant's config and the training data.

Two views of each prediction are scored: "classifier" is DIET's top intent, "final"
is what the dialogue receives after the FallbackClassifier (a message it turns into
`nlu_fallback` counts as missed). The gate in `make test` (tests/test_nlu_gate.py)
uses the final view: macro-F1 over the held-out intents and NIK accuracy.
"""
from __future__ import annotations

import argparse
import asyncio
import copy
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

warnings.simplefilter("ignore")  # Rasa's dependencies are noisy on import

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from scripts.rasa_model import RASA, cache_dir, ensure_model  # noqa: E402

HELDOUT = ROOT / "tests" / "nlu" / "heldout.yml"
CONFIG = ROOT / "config.yml"
REPORTS = ROOT / "reports" / "nlu"
FALLBACK = "nlu_fallback"
SCORED_ENTITIES = ("nik", "ticket_ref")
SWEEP = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
CONFUSIONS_SHOWN = 10
QUIET_ENV = {
    "RASA_TELEMETRY_ENABLED": "false",
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
    "PYTHONWARNINGS": "ignore",
}
# Messages no intent fits: the fallback should catch them (or out_of_scope answer
# them). Used only for the threshold table, not for the F1 figures.
UNSURE = (
    "xqzv wplk", "asdfghjkl", "brrr zzkt qwp", "...", "??", "hmm", "wkwkwk",
    "kemarin itu lho yang itu", "anu pak", "ya gitu deh", "lha kok iso", "blablabla",
    "tes tes", "🙏🙏",
)


# ---- the data ------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    text: str
    intent: str
    # (entity, value) pairs of the scored entities, values as written in the text.
    entities: frozenset = frozenset()


def load_examples(path: Path) -> List[Example]:
    from rasa.shared.nlu.training_data.loading import load_data

    data = load_data(str(path))
    examples = []
    for message in data.intent_examples:
        text = message.get("text")
        found = frozenset(
            (e["entity"], text[e["start"]:e["end"]])
            for e in message.get("entities") or []
            if e["entity"] in SCORED_ENTITIES
        )
        examples.append(Example(text, message.get("intent"), found))
    return examples


# ---- pipelines -----------------------------------------------------------------


@dataclass
class Pipeline:
    name: str
    description: str
    config: Dict[str, Any]
    model: Optional[Path] = None  # given or trained


def _load_yaml(path: Path) -> Dict[str, Any]:
    from rasa.shared.utils.io import read_yaml_file

    return read_yaml_file(str(path))


def _is_char_ngrams(component: Dict[str, Any]) -> bool:
    return component["name"] == "CountVectorsFeaturizer" and str(
        component.get("analyzer", "word")
    ).startswith("char")


STEMMER = "nlu_components.sastrawi_tokenizer.SastrawiTokenizer"


def _toggle_char_ngrams(config: Dict[str, Any]) -> Tuple[str, str]:
    pipeline = config["pipeline"]
    if any(_is_char_ngrams(c) for c in pipeline):
        config["pipeline"] = [c for c in pipeline if not _is_char_ngrams(c)]
        return "no-char-ngrams", "config.yml without the character n-gram featurizer"
    at = max(i for i, c in enumerate(pipeline) if c["name"] == "CountVectorsFeaturizer") + 1
    pipeline.insert(at, {"name": "CountVectorsFeaturizer", "analyzer": "char_wb",
                         "min_ngram": 1, "max_ngram": 4, "use_lemma": False})
    return "char-ngrams", "config.yml with character n-grams (char_wb 1-4)"


def _toggle_stemmer(config: Dict[str, Any]) -> Tuple[str, str]:
    pipeline = config["pipeline"]
    tokenizer = pipeline[0]
    if tokenizer["name"] == STEMMER:
        tokenizer["name"] = "WhitespaceTokenizer"
        return "no-stemmer", "config.yml with the plain WhitespaceTokenizer (no Sastrawi stems)"
    tokenizer["name"] = STEMMER
    for component in pipeline:
        if component["name"] == "CountVectorsFeaturizer":
            # Words are counted by their stem, character n-grams as typed.
            component["use_lemma"] = not _is_char_ngrams(component)
    return "sastrawi", "config.yml with the Sastrawi stemmer (word counts on stems)"


VARIANTS: Tuple[Callable[[Dict[str, Any]], Tuple[str, str]], ...] = (
    _toggle_char_ngrams,
    _toggle_stemmer,
)


def pipelines(include_variants: bool) -> List[Pipeline]:
    base = _load_yaml(CONFIG)
    found = [Pipeline("config.yml", "the current config.yml", base)]
    if include_variants:
        for change in VARIANTS:
            config = copy.deepcopy(base)
            config.pop("policies", None)
            name, description = change(config)
            found.append(Pipeline(name, description, config))
    return found


def _stemmer_available() -> bool:
    try:
        import Sastrawi  # noqa: F401
    except ImportError:
        return False
    return True


def _training_inputs_digest(config_text: str) -> str:
    digest = hashlib.sha256(config_text.encode())
    files = [ROOT / "requirements-rasa.lock"] + sorted((ROOT / "nlu").rglob("*.yml"))
    files += sorted((ROOT / "nlu_components").glob("*.py"))
    for path in files:
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def train_nlu(pipeline: Pipeline, quiet: bool) -> Path:
    """An NLU-only model for a variant's config, trained once and cached."""
    import yaml

    text = yaml.safe_dump(pipeline.config, sort_keys=False, allow_unicode=True)
    target = cache_dir() / f"nlu-{pipeline.name}-{_training_inputs_digest(text)}.tar.gz"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as out:
        config_path = Path(out) / "config.yml"
        config_path.write_text(text)
        command = [str(RASA), "train", "nlu", "--nlu", "nlu", "--config", str(config_path),
                   "--out", out, "--fixed-model-name", "model"]
        stream = subprocess.DEVNULL if quiet else None
        subprocess.run(command, cwd=ROOT, check=True, stdout=stream, stderr=stream,
                       env={**os.environ, **QUIET_ENV})
        partial = target.with_suffix(".partial")
        shutil.copyfile(Path(out) / "model.tar.gz", partial)
        partial.replace(target)
    print(f"trained {target.name} in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return target


# ---- predicting ----------------------------------------------------------------


def _quiet_rasa() -> None:
    os.environ.update({k: v for k, v in QUIET_ENV.items() if k != "PYTHONWARNINGS"})
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    from rasa.utils.log_utils import configure_structlog

    configure_structlog(logging.WARNING)
    warnings.simplefilter("ignore")


async def _parse_all(model: Path, texts: Sequence[str]) -> List[Dict[str, Any]]:
    from rasa.core.agent import Agent

    agent = Agent.load(str(model))
    return [await agent.parse_message(text) for text in texts]


def predict(model: Path, texts: Sequence[str]) -> List[Dict[str, Any]]:
    return asyncio.run(_parse_all(model, texts))


# ---- scoring -------------------------------------------------------------------


@dataclass
class Prediction:
    final: str  # after the FallbackClassifier and UnknownWordsFallback
    intent: str  # DIET's top intent
    confidence: float
    margin: float  # top confidence minus the second
    entities: frozenset = field(default_factory=frozenset)


def read_prediction(parse: Dict[str, Any]) -> Prediction:
    text = parse.get("text") or ""
    final = (parse.get("intent") or {}).get("name") or FALLBACK
    ranking = [r for r in parse.get("intent_ranking") or [] if r.get("name") != FALLBACK]
    top = ranking[0] if ranking else {"name": final, "confidence": 0.0}
    second = ranking[1]["confidence"] if len(ranking) > 1 else 0.0
    entities = frozenset(
        (e["entity"], text[e["start"]:e["end"]])
        for e in parse.get("entities") or []
        if e.get("entity") in SCORED_ENTITIES
    )
    return Prediction(final, top["name"], float(top["confidence"]),
                      float(top["confidence"]) - float(second), entities)


def intent_scores(gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> Dict[str, Any]:
    from sklearn.metrics import precision_recall_fscore_support

    precision, recall, f1, support = precision_recall_fscore_support(
        gold, predicted, labels=list(labels), zero_division=0
    )
    per_intent = {
        label: {"precision": round(float(p), 4), "recall": round(float(r), 4),
                "f1": round(float(f), 4), "support": int(s)}
        for label, p, r, f, s in zip(labels, precision, recall, f1, support)
    }
    correct = sum(g == p for g, p in zip(gold, predicted))
    return {
        "macro_f1": round(sum(v["f1"] for v in per_intent.values()) / len(labels), 4),
        "accuracy": round(correct / len(gold), 4),
        "per_intent": per_intent,
    }


def confusion_pairs(examples: Sequence[Example], predicted: Sequence[str]) -> List[Dict[str, Any]]:
    pairs: Dict[Tuple[str, str], List[str]] = {}
    for example, label in zip(examples, predicted):
        if label != example.intent:
            pairs.setdefault((example.intent, label), []).append(example.text)
    ranked = sorted(pairs.items(), key=lambda item: (-len(item[1]), item[0]))
    return [{"gold": g, "predicted": p, "count": len(texts), "examples": texts[:3]}
            for (g, p), texts in ranked]


def entity_scores(examples: Sequence[Example], predictions: Sequence[Prediction]) -> Dict[str, Any]:
    scores = {}
    for entity in SCORED_ENTITIES:
        total = correct = 0
        misses = []
        for example, prediction in zip(examples, predictions):
            gold = {v for e, v in example.entities if e == entity}
            found = {v for e, v in prediction.entities if e == entity}
            if not gold and not found:
                continue
            total += 1
            if gold == found:
                correct += 1
            else:
                misses.append({"text": example.text, "gold": sorted(gold), "found": sorted(found)})
        scores[entity] = {"examples": total, "correct": correct,
                          "accuracy": round(correct / total, 4) if total else 1.0,
                          "misses": misses}
    return scores


def threshold_sweep(examples: Sequence[Example], predictions: Sequence[Prediction],
                    unsure: Sequence[Prediction], configured: float, ambiguity: float,
                    labels: Sequence[str]) -> List[Dict[str, Any]]:
    """What each FallbackClassifier threshold would do; other fallbacks stay as they were."""
    def other_fallback(p: Prediction) -> bool:
        return p.final == FALLBACK and p.confidence >= configured and p.margin >= ambiguity

    rows = []
    for threshold in SWEEP:
        def asks_back(p: Prediction) -> bool:
            return other_fallback(p) or p.confidence < threshold or p.margin < ambiguity

        final = [FALLBACK if asks_back(p) else p.intent for p in predictions]
        kept = [(e, p) for e, p in zip(examples, predictions) if not asks_back(p)]
        caught = sum(asks_back(p) or p.intent == "out_of_scope" for p in unsure)
        rows.append({
            "threshold": threshold,
            "asked_back": round(sum(f == FALLBACK for f in final) / len(final), 4),
            "accuracy_when_answered": round(sum(e.intent == p.intent for e, p in kept) / len(kept), 4) if kept else 0.0,
            "macro_f1": intent_scores([e.intent for e in examples], final, labels)["macro_f1"],
            "unsure_caught": round(caught / len(unsure), 4) if unsure else 0.0,
        })
    return rows


def fallback_config(config: Dict[str, Any]) -> Tuple[float, float]:
    for component in config.get("pipeline") or []:
        if component["name"] == "FallbackClassifier":
            return float(component.get("threshold", 0.3)), float(component.get("ambiguity_threshold", 0.1))
    return 0.0, 0.0


def evaluate(pipeline: Pipeline, examples: Sequence[Example]) -> Dict[str, Any]:
    assert pipeline.model is not None
    texts = [e.text for e in examples]
    parses = predict(pipeline.model, list(texts) + list(UNSURE))
    predictions = [read_prediction(p) for p in parses[: len(texts)]]
    unsure = [read_prediction(p) for p in parses[len(texts):]]
    labels = sorted({e.intent for e in examples})
    gold = [e.intent for e in examples]
    final = [p.final for p in predictions]
    threshold, ambiguity = fallback_config(pipeline.config)
    final_scores = intent_scores(gold, final, labels)
    return {
        "pipeline": pipeline.name,
        "description": pipeline.description,
        "model": pipeline.model.name,
        "heldout": str(HELDOUT.relative_to(ROOT)),
        "examples": len(examples),
        "intents": len(labels),
        "fallback_threshold": threshold,
        "ambiguity_threshold": ambiguity,
        # The gate's figures: what the dialogue receives.
        "macro_f1": final_scores["macro_f1"],
        "accuracy": final_scores["accuracy"],
        "asked_back": round(final.count(FALLBACK) / len(final), 4),
        "per_intent": final_scores["per_intent"],
        "confusions": confusion_pairs(examples, final),
        "classifier": intent_scores(gold, [p.intent for p in predictions], labels),
        "classifier_confusions": confusion_pairs(examples, [p.intent for p in predictions]),
        "entities": entity_scores(examples, predictions),
        "threshold_sweep": threshold_sweep(examples, predictions, unsure, threshold, ambiguity, labels),
        "unclear": [
            {"text": text, "final": p.final, "intent": p.intent, "confidence": round(p.confidence, 4)}
            for text, p in zip(UNSURE, unsure)
        ],
        "predictions": [
            {"text": e.text, "gold": e.intent, "final": p.final, "intent": p.intent,
             "confidence": round(p.confidence, 4)}
            for e, p in zip(examples, predictions)
        ],
        "_gold": gold,
        "_final": final,
    }


# ---- reporting -----------------------------------------------------------------


def confusion_text(confusions: Sequence[Dict[str, Any]], limit: int = CONFUSIONS_SHOWN) -> str:
    if not confusions:
        return "  (no confusions)"
    lines = []
    for pair in confusions[:limit]:
        quoted = "; ".join(f'"{text}"' for text in pair["examples"])
        lines.append(f"  {pair['count']:>2} x {pair['gold']} -> {pair['predicted']}: {quoted}")
    return "\n".join(lines)


def summary_text(report: Dict[str, Any]) -> str:
    lines = [
        f"== {report['pipeline']}: {report['description']}",
        f"   model {report['model']}, {report['examples']} held-out examples, {report['intents']} intents",
        "",
        f"   {'intent':<28}{'prec':>7}{'recall':>8}{'F1':>7}{'n':>5}",
    ]
    for intent, s in report["per_intent"].items():
        lines.append(f"   {intent:<28}{s['precision']:>7.3f}{s['recall']:>8.3f}{s['f1']:>7.3f}{s['support']:>5}")
    ents = report["entities"]
    lines += [
        "",
        f"   macro-F1 {report['macro_f1']:.3f} (DIET alone {report['classifier']['macro_f1']:.3f}), "
        f"accuracy {report['accuracy']:.3f}, asked back {report['asked_back']:.1%} "
        f"(threshold {report['fallback_threshold']}, ambiguity {report['ambiguity_threshold']})",
        f"   NIK exact match {ents['nik']['correct']}/{ents['nik']['examples']} "
        f"({ents['nik']['accuracy']:.1%}), ticket_ref {ents['ticket_ref']['correct']}/"
        f"{ents['ticket_ref']['examples']} ({ents['ticket_ref']['accuracy']:.1%})",
        "   top confusions (gold -> predicted):",
        confusion_text(report["confusions"]),
    ]
    for entity in SCORED_ENTITIES:
        for miss in ents[entity]["misses"][:5]:
            lines.append(f"   {entity} miss: \"{miss['text']}\" expected {miss['gold']} found {miss['found']}")
    return "\n".join(lines)


def markdown(report: Dict[str, Any]) -> str:
    ents = report["entities"]
    lines = [
        f"# NLU evaluation: {report['pipeline']}",
        "",
        f"{report['description']}. Model `{report['model']}`, held-out set `{report['heldout']}` "
        f"({report['examples']} examples, {report['intents']} intents).",
        "",
        f"- macro-F1 (after the FallbackClassifier): **{report['macro_f1']:.3f}**; DIET alone: {report['classifier']['macro_f1']:.3f}",
        f"- accuracy: {report['accuracy']:.3f}; asked back (nlu_fallback): {report['asked_back']:.1%} "
        f"at threshold {report['fallback_threshold']}, ambiguity {report['ambiguity_threshold']}",
        f"- NIK exact match: {ents['nik']['correct']}/{ents['nik']['examples']} ({ents['nik']['accuracy']:.1%}); "
        f"ticket_ref: {ents['ticket_ref']['correct']}/{ents['ticket_ref']['examples']} ({ents['ticket_ref']['accuracy']:.1%})",
        "",
        "| intent | precision | recall | F1 | n |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for intent, s in report["per_intent"].items():
        lines.append(f"| {intent} | {s['precision']:.3f} | {s['recall']:.3f} | {s['f1']:.3f} | {s['support']} |")
    lines += ["", "## Confusions (gold -> predicted)", "", "| n | gold | predicted | examples |", "| ---: | --- | --- | --- |"]
    for pair in report["confusions"]:
        quoted = "; ".join(f"`{t}`" for t in pair["examples"])
        lines.append(f"| {pair['count']} | {pair['gold']} | {pair['predicted']} | {quoted} |")
    lines += [
        "", "## Fallback threshold", "",
        "Share of held-out messages asked back, accuracy of the rest, macro-F1 counting a "
        "question back as a miss, and share of unclear messages (gibberish) caught by the "
        "fallback or answered as out_of_scope.", "",
        "| threshold | asked back | accuracy when answered | macro-F1 | unclear caught |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in report["threshold_sweep"]:
        lines.append(f"| {row['threshold']:.1f} | {row['asked_back']:.1%} | {row['accuracy_when_answered']:.3f} "
                     f"| {row['macro_f1']:.3f} | {row['unsure_caught']:.1%} |")
    return "\n".join(lines) + "\n"


def plot_confusion(report: Dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    labels = list(report["per_intent"]) + [FALLBACK]
    fig, ax = plt.subplots(figsize=(12, 11))
    ConfusionMatrixDisplay.from_predictions(
        report["_gold"], report["_final"], labels=labels, ax=ax, colorbar=False,
        xticks_rotation="vertical", cmap="Blues",
    )
    ax.set_title(f"Held-out intents: {report['pipeline']} (macro-F1 {report['macro_f1']:.3f})")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_report(report: Dict[str, Any], out: Path, plot: bool) -> None:
    out.mkdir(parents=True, exist_ok=True)
    public = {k: v for k, v in report.items() if not k.startswith("_")}
    (out / "report.json").write_text(json.dumps(public, indent=2, ensure_ascii=False) + "\n")
    (out / "report.md").write_text(markdown(report))
    if plot:
        plot_confusion(report, out / "confusion.png")


def comparison(reports: Sequence[Dict[str, Any]]) -> str:
    lines = [
        "| pipeline | macro-F1 | DIET-only macro-F1 | accuracy | asked back | NIK | ticket_ref |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in reports:
        ents = r["entities"]
        lines.append(
            f"| {r['pipeline']} | {r['macro_f1']:.3f} | {r['classifier']['macro_f1']:.3f} | {r['accuracy']:.3f} "
            f"| {r['asked_back']:.1%} | {ents['nik']['accuracy']:.1%} | {ents['ticket_ref']['accuracy']:.1%} |"
        )
    return "\n".join(lines)


# ---- command line --------------------------------------------------------------


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="evaluate this trained model only (config.yml's pipeline)")
    parser.add_argument("--no-variants", action="store_true", help="evaluate config.yml only")
    parser.add_argument("--out", type=Path, default=REPORTS, help="where reports go (default reports/nlu)")
    parser.add_argument("--json", type=Path, help="also write the first pipeline's report here")
    parser.add_argument("--no-plot", action="store_true", help="skip the confusion-matrix image")
    parser.add_argument("--quick", action="store_true",
                        help="train config.yml NLU-only (no dialogue policies) while editing the data")
    parser.add_argument("--verbose", action="store_true", help="show Rasa's training output")
    args = parser.parse_args(argv)

    _quiet_rasa()
    examples = load_examples(HELDOUT)
    chosen = pipelines(include_variants=not (args.model or args.no_variants))
    if args.model:
        chosen[0].model = args.model.resolve()
    reports = []
    for pipeline in chosen:
        if pipeline.model is None:
            if pipeline.name == "config.yml" and not args.quick:
                pipeline.model = ensure_model(quiet=not args.verbose)
            elif STEMMER in json.dumps(pipeline.config) and not _stemmer_available():
                print(f"-- skipping {pipeline.name}: the Sastrawi package is not installed in .venv-rasa", file=sys.stderr)
                continue
            else:
                pipeline.model = train_nlu(pipeline, quiet=not args.verbose)
        report = evaluate(pipeline, examples)
        write_report(report, args.out / pipeline.name, plot=not args.no_plot)
        print(summary_text(report), flush=True)
        print(flush=True)
        reports.append(report)
    if args.json and reports:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        public = {k: v for k, v in reports[0].items() if not k.startswith("_")}
        args.json.write_text(json.dumps(public, indent=2, ensure_ascii=False) + "\n")
    if len(reports) > 1:
        table = comparison(reports)
        (args.out / "comparison.md").write_text("# NLU pipelines on the held-out set\n\n" + table + "\n")
        print(table)
    print(f"\nreports in {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
