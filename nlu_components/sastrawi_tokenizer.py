"""A whitespace tokenizer that also gives every token its Indonesian stem.

Sastrawi (a port of the Nazief-Adriani stemmer) strips Indonesian affixes, so
"pencairan", "dicairkan" and "cairnya" all become "cair". The stem goes into the
token's lemma; a CountVectorsFeaturizer with `use_lemma: true` (its default)
then counts stems, while one with `use_lemma: false` keeps the words as typed
(the character n-grams should see "sy" and "blm" as written).

Used by the pipeline variant tests/nlu/pipelines/sastrawi.yml, which
scripts/eval_nlu.py compares with config.yml. Needs the `Sastrawi` package in
.venv-rasa; Rasa imports this module from the project root (`rasa` puts the
working directory on sys.path).
"""
from __future__ import annotations

import functools
from typing import Any, Dict, List, Text

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.tokenizers.tokenizer import Token
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message


@functools.lru_cache(maxsize=1)
def _stemmer() -> Any:
    from Sastrawi.Stemmer.StemmerFactory import StemmerFactory

    return StemmerFactory().create_stemmer()


@functools.lru_cache(maxsize=50_000)
def stem(word: Text) -> Text:
    """The Sastrawi stem of one lowercased word; words with digits stay as they are."""
    word = word.lower()
    if any(ch.isdigit() for ch in word) or len(word) < 4:
        return word
    return _stemmer().stem(word) or word


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER, is_trainable=False
)
class SastrawiTokenizer(WhitespaceTokenizer):
    """WhitespaceTokenizer whose tokens carry their Sastrawi stem as lemma."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return WhitespaceTokenizer.get_default_config()

    def tokenize(self, message: Message, attribute: Text) -> List[Token]:
        tokens = super().tokenize(message, attribute)
        if attribute != TEXT:
            return tokens  # intent and action names are labels, not words
        for token in tokens:
            token.lemma = stem(token.text)
        return tokens
