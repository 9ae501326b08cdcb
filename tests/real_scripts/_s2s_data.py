# ruff: noqa: E501  (the ported notebook's own lines are kept as written)
"""A toy German -> English corpus and the data code of bentrevett/pytorch-seq2seq.

The notebooks load Multi30k (HF ``datasets`` in 1-3, torchtext.legacy in 4-6), tokenize
with spaCy and build torchtext vocabularies. Those are not torch: here a tiny synthetic
corpus (each German word has one English word; the English sentence is the German one
reversed, so the task needs the whole source), a whitespace tokenizer with spaCy's
``nlp.tokenizer(text)`` -> tokens-with-``.text`` shape, a vocabulary with torchtext's
methods, and a BucketIterator stand-in (sorted within the batch, time-major or
batch-first, ``include_lengths``) stand in for them. ``tokenize_example``,
``numericalize_example``, ``get_collate_fn`` and ``get_data_loader`` are notebook 1's code
with ``torch`` -> ``fw``.
"""

from collections import Counter
from types import SimpleNamespace

import numpy as np

import framework as fw
import framework.nn as nn

torch = fw

DE = "ein mann frau kind hund sitzt läuft auf bank straße rot blau groß klein".split()
EN = "a man woman child dog sits runs on bench street red blue big small".split()
DE2EN = dict(zip(DE, EN))


def toy_corpus(n, seed, min_len=3, max_len=6):
    """n examples {"de": str, "en": str}: English = the German words translated, reversed."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        words = [DE[i] for i in rng.integers(0, len(DE), int(rng.integers(min_len, max_len + 1)))]
        out.append({"de": " ".join(words), "en": " ".join(DE2EN[w] for w in reversed(words))})
    return out


class ToyNLP:
    """spaCy's ``nlp.tokenizer(text)``: tokens with a ``.text`` (whitespace split)."""

    def tokenizer(self, text):
        return [SimpleNamespace(text=t) for t in text.split()]

    __call__ = tokenizer


class ToyVocab:
    """torchtext.vocab.Vocab's surface: ``[token]``, ``in``, ``len``, ``get_itos``,
    ``get_stoi``, ``lookup_indices``, ``lookup_tokens``, ``set_default_index``; legacy
    torchtext's ``.stoi``/``.itos`` too."""

    def __init__(self, itos):
        self.itos = list(itos)
        self.stoi = {t: i for i, t in enumerate(self.itos)}
        self.default = None

    def __getitem__(self, token):
        if token in self.stoi:
            return self.stoi[token]
        if self.default is None:
            raise RuntimeError(f"Token {token} not found and default index is not set")
        return self.default

    def __contains__(self, token):
        return token in self.stoi

    def __len__(self):
        return len(self.itos)

    def get_itos(self):
        return self.itos

    def get_stoi(self):
        return self.stoi

    def set_default_index(self, index):
        self.default = index

    def lookup_indices(self, tokens):
        return [self[t] for t in tokens]

    def lookup_tokens(self, indices):
        return [self.itos[int(i)] for i in indices]


def build_vocab_from_iterator(iterator, min_freq=1, specials=()):
    """torchtext's: specials first, then tokens by descending frequency (ties by first seen)."""
    counts = Counter(t for tokens in iterator for t in tokens)
    words = [t for t, c in sorted(counts.items(), key=lambda kv: -kv[1])
             if c >= min_freq and t not in specials]
    return ToyVocab(list(specials) + words)


# ---- notebook 1 (also 2 and 3): tokenize, numericalize, collate ---------------------------

def tokenize_example(example, en_nlp, de_nlp, max_length, lower, sos_token, eos_token):
    en_tokens = [token.text for token in en_nlp.tokenizer(example["en"])][:max_length]
    de_tokens = [token.text for token in de_nlp.tokenizer(example["de"])][:max_length]
    if lower:
        en_tokens = [token.lower() for token in en_tokens]
        de_tokens = [token.lower() for token in de_tokens]
    en_tokens = [sos_token] + en_tokens + [eos_token]
    de_tokens = [sos_token] + de_tokens + [eos_token]
    return {"en_tokens": en_tokens, "de_tokens": de_tokens}


def numericalize_example(example, en_vocab, de_vocab):
    en_ids = en_vocab.lookup_indices(example["en_tokens"])
    de_ids = de_vocab.lookup_indices(example["de_tokens"])
    return {"en_ids": en_ids, "de_ids": de_ids}


def get_collate_fn(pad_index):
    def collate_fn(batch):
        batch_en_ids = [example["en_ids"] for example in batch]
        batch_de_ids = [example["de_ids"] for example in batch]
        batch_en_ids = nn.utils.rnn.pad_sequence(batch_en_ids, padding_value=pad_index)
        batch_de_ids = nn.utils.rnn.pad_sequence(batch_de_ids, padding_value=pad_index)
        batch = {
            "en_ids": batch_en_ids,
            "de_ids": batch_de_ids,
        }
        return batch

    return collate_fn


def get_data_loader(dataset, batch_size, pad_index, shuffle=False):
    collate_fn = get_collate_fn(pad_index)
    data_loader = torch.utils.data.DataLoader(
        dataset=dataset,
        batch_size=batch_size,
        collate_fn=collate_fn,
        shuffle=shuffle,
    )
    return data_loader


SPECIALS = ["<unk>", "<pad>", "<sos>", "<eos>"]


def prepare(n_train=48, n_valid=16, seed=0, lower=True):
    """The notebooks' data pipeline on the toy corpus: ``(train, valid, en_vocab,
    de_vocab)`` with ``{"en_ids", "de_ids"}`` as fw int64 tensors (``with_format("torch")``)."""
    nlp = ToyNLP()
    fn_kwargs = {"en_nlp": nlp, "de_nlp": nlp, "max_length": 1_000, "lower": lower,
                 "sos_token": "<sos>", "eos_token": "<eos>"}
    train = [dict(e, **tokenize_example(e, **fn_kwargs)) for e in toy_corpus(n_train, seed)]
    valid = [dict(e, **tokenize_example(e, **fn_kwargs)) for e in toy_corpus(n_valid, seed + 1)]
    en_vocab = build_vocab_from_iterator([e["en_tokens"] for e in train], min_freq=1,
                                         specials=SPECIALS)
    de_vocab = build_vocab_from_iterator([e["de_tokens"] for e in train], min_freq=1,
                                         specials=SPECIALS)
    en_vocab.set_default_index(en_vocab["<unk>"])
    de_vocab.set_default_index(de_vocab["<unk>"])

    def as_torch(data):
        out = []
        for e in data:
            ids = numericalize_example(e, en_vocab, de_vocab)
            out.append(dict(e, en_ids=torch.tensor(ids["en_ids"]),
                            de_ids=torch.tensor(ids["de_ids"])))
        return out

    return as_torch(train), as_torch(valid), en_vocab, de_vocab


# ---- legacy notebooks (4-6): torchtext.legacy's Field + BucketIterator --------------------

def legacy_batches(data, en_vocab, de_vocab, batch_size, batch_first=False,
                   include_lengths=False, sort_within_batch=False):
    """What ``BucketIterator`` yields: objects with ``.src`` (``(src, src_len)`` with
    ``include_lengths``) and ``.trg``, padded with ``<pad>``, time-major unless
    ``batch_first``; ``sort_within_batch`` sorts each batch by source length, longest first."""
    pad = de_vocab["<pad>"]
    batches = []
    for i in range(0, len(data), batch_size):
        chunk = data[i:i + batch_size]
        if sort_within_batch:
            chunk = sorted(chunk, key=lambda e: -len(e["de_ids"]))
        src = nn.utils.rnn.pad_sequence([e["de_ids"] for e in chunk], batch_first=batch_first,
                                        padding_value=pad)
        trg = nn.utils.rnn.pad_sequence([e["en_ids"] for e in chunk], batch_first=batch_first,
                                        padding_value=en_vocab["<pad>"])
        if include_lengths:
            src = (src, torch.tensor([len(e["de_ids"]) for e in chunk]))
        batches.append(SimpleNamespace(src=src, trg=trg))
    return batches


class Field(SimpleNamespace):
    """The bits of torchtext.legacy's Field that ``translate_sentence`` reads."""

    def __init__(self, vocab):
        super().__init__(vocab=vocab, init_token="<sos>", eos_token="<eos>", pad_token="<pad>")


# the legacy notebooks' translate_sentence calls spacy.load(...) for a string sentence
spacy = SimpleNamespace(load=lambda name: ToyNLP())
