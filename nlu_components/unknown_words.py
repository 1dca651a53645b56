"""Ask back when not a single word of a message is known.

DIET's confidences say how a message compares with the intents it knows, not
whether the message resembles anything it was trained on: "xqzv wplk" or
"asdfghjkl" come out as some intent with 0.9 or more, so no threshold of the
FallbackClassifier catches them. This component learns the words of the training
data (examples, lookup tables and synonyms) and turns a message none of whose
words it knows into `nlu_fallback`, exactly as the FallbackClassifier does: the
intent becomes `nlu_fallback` and DIET's ranking stays below it.

A word counts as known when it is in the vocabulary, is one typing slip away
from a known word of four letters or more ("haloo", "trimakasih"), or starts with
a known word of three letters or more ("okelah"). Words with digits (NIKs, report
references, numbers) always count as known: a number alone is an answer. A
message without any word (emoji only, "...") counts as unknown.

Place it after the FallbackClassifier in config.yml. Rasa imports it from the
project root (`rasa` puts the working directory on sys.path).
"""
from __future__ import annotations

import logging
from typing import Any, Dict, FrozenSet, Iterable, List, Optional, Text

import rasa.shared.utils.io
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.nlu.constants import TOKENS_NAMES
from rasa.shared.constants import DEFAULT_NLU_FALLBACK_INTENT_NAME
from rasa.shared.nlu.constants import (
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

logger = logging.getLogger(__name__)

VOCABULARY_FILE = "vocabulary.json"
MIN_LENGTH_FOR_TYPO = 4
MIN_LENGTH_FOR_PREFIX = 3


def words_of(text: Text) -> List[Text]:
    """Lowercased words as the WhitespaceTokenizer would cut them (approximately)."""
    cleaned = "".join(ch if ch.isalnum() else " " for ch in text.lower())
    return cleaned.split()


def _one_slip_apart(a: Text, b: Text) -> bool:
    """Whether one insertion, deletion or substitution turns a into b."""
    if abs(len(a) - len(b)) > 1 or a == b:
        return a == b
    if len(a) > len(b):
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    return a[i + (len(a) == len(b)):] == b[i + 1:]


class Vocabulary:
    """The words seen in training, with the forgiving lookups described above."""

    def __init__(self, words: Iterable[Text]) -> None:
        self.words: FrozenSet[Text] = frozenset(words)
        self._by_length: Dict[int, List[Text]] = {}
        for word in self.words:
            self._by_length.setdefault(len(word), []).append(word)

    def knows(self, word: Text) -> bool:
        if word in self.words or any(ch.isdigit() for ch in word):
            return True
        if any(word[:n] in self.words for n in range(MIN_LENGTH_FOR_PREFIX, len(word))):
            return True
        if len(word) < MIN_LENGTH_FOR_TYPO:
            return False
        candidates = (
            known
            for size in (len(word) - 1, len(word), len(word) + 1)
            for known in self._by_length.get(size, ())
            if len(known) >= MIN_LENGTH_FOR_TYPO
        )
        return any(_one_slip_apart(word, known) for known in candidates)


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True
)
class UnknownWordsFallback(GraphComponent, IntentClassifier):
    """Predicts `nlu_fallback` for a message without a single known word."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        # The confidence given to the fallback intent, as the FallbackClassifier
        # gives its threshold.
        return {"fallback_confidence": 0.5}

    def __init__(
        self,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        vocabulary: Optional[Vocabulary] = None,
    ) -> None:
        self.component_config = config
        self._model_storage = model_storage
        self._resource = resource
        self.vocabulary = vocabulary or Vocabulary(())

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> UnknownWordsFallback:
        return cls(config, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        words = set()
        for message in training_data.training_examples:
            text = message.get(TEXT)
            if text:
                words.update(words_of(text))
        for table in training_data.lookup_tables:
            for element in table.get("elements") or []:
                words.update(words_of(str(element)))
        for spelling in training_data.entity_synonyms:
            words.update(words_of(spelling))
        self.vocabulary = Vocabulary(words)
        self.persist()
        return self._resource

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            intent = message.get(INTENT) or {}
            if intent.get(INTENT_NAME_KEY) == DEFAULT_NLU_FALLBACK_INTENT_NAME:
                continue
            if not self._knows_a_word(message):
                fallback = {
                    INTENT_NAME_KEY: DEFAULT_NLU_FALLBACK_INTENT_NAME,
                    PREDICTED_CONFIDENCE_KEY: self.component_config["fallback_confidence"],
                }
                message.set(INTENT, fallback, add_to_output=True)
                ranking = list(message.get(INTENT_RANKING_KEY) or [])
                message.set(INTENT_RANKING_KEY, [fallback] + ranking, add_to_output=True)
        return messages

    def _knows_a_word(self, message: Message) -> bool:
        if not self.vocabulary.words:
            return True  # nothing learnt: leave every message to the other classifiers
        tokens = message.get(TOKENS_NAMES[TEXT]) or []
        words = [w for token in tokens for w in words_of(token.text)]
        if not words:
            words = words_of(message.get(TEXT) or "")
        return any(self.vocabulary.knows(word) for word in words)

    def persist(self) -> None:
        with self._model_storage.write_to(self._resource) as directory:
            rasa.shared.utils.io.dump_obj_as_json_to_file(
                directory / VOCABULARY_FILE, sorted(self.vocabulary.words)
            )

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> UnknownWordsFallback:
        try:
            with model_storage.read_from(resource) as directory:
                words = rasa.shared.utils.io.read_json_file(directory / VOCABULARY_FILE)
        except ValueError:
            logger.warning("UnknownWordsFallback has no vocabulary: every message passes.")
            words = None
        return cls(config, model_storage, resource, Vocabulary(words or ()))
