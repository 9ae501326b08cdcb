"""pytorch/tutorials ``beginner_source/text_sentiment_ngrams_tutorial.py`` (text
classification with ``nn.EmbeddingBag``) ported to fw.

Changes beyond ``torch`` -> ``fw``: torchtext's AG_NEWS iterators, ``basic_english``
tokenizer, ``build_vocab_from_iterator`` and ``to_map_style_dataset`` (not torch) become a
synthetic four-topic news corpus, a regex tokenizer, a dictionary vocab and ``list``; sizes
shrink (emsize 16, batch 8, 4 epochs). The older version's ``sparse=True`` EmbeddingBag with
``generate_batch`` is exercised too.
"""

import random
import re
import time

import numpy as np
import pytest

import framework as torch
from framework import nn
from framework.utils.data import DataLoader
from framework.utils.data.dataset import random_split

from ._checks import assert_onnx_export_matches, assert_params_close, grad_leaves

# -- torchtext stand-ins: AG_NEWS-like data, tokenizer, vocab ------------------------------
TOPICS = {1: "election minister war treaty government", 2: "match goal coach season team",
          3: "market stock profit bank shares", 4: "software space chip research computer"}
FILLER = "the a of in on today reports says new".split()


def AG_NEWS(split="train", n=None, seed=0):
    """(label, text) pairs, label 1..4: topic words mixed with filler words."""
    rng = random.Random(seed if split == "train" else seed + 1)
    n = n or (160 if split == "train" else 40)
    out = []
    for _ in range(n):
        label = rng.randint(1, 4)
        words = rng.choices(TOPICS[label].split(), k=rng.randint(2, 4))
        words += rng.choices(FILLER, k=rng.randint(1, 5))
        rng.shuffle(words)
        out.append((label, " ".join(words).capitalize() + "."))
    return out


def get_tokenizer(name):
    assert name == "basic_english"
    return lambda line: re.sub(r"([.,!?'])", r" \1 ", line.lower()).split()


def build_vocab_from_iterator(iterator, specials):
    vocab = {}
    for tok in [*specials, *(t for toks in iterator for t in toks)]:
        vocab.setdefault(tok, len(vocab))

    class Vocab(dict):
        def set_default_index(self, i):
            self.default = i

        def __call__(self, tokens):
            return [self.get(t, self.default) for t in tokens]
    return Vocab(vocab)


def to_map_style_dataset(iter_data):
    return list(iter_data)


tokenizer = get_tokenizer("basic_english")
train_iter = AG_NEWS(split="train")


def yield_tokens(data_iter):
    for _, text in data_iter:
        yield tokenizer(text)


vocab = build_vocab_from_iterator(yield_tokens(train_iter), specials=["<unk>"])
vocab.set_default_index(vocab["<unk>"])

text_pipeline = lambda x: vocab(tokenizer(x))  # noqa: E731 (as in the tutorial)
label_pipeline = lambda x: int(x) - 1  # noqa: E731

# the tutorial: "cuda" if torch.cuda.is_available() else "cpu" (a CPU test: see conftest)
device = torch.device("cpu")


def collate_batch(batch):
    label_list, text_list, offsets = [], [], [0]
    for _label, _text in batch:
        label_list.append(label_pipeline(_label))
        processed_text = torch.tensor(text_pipeline(_text), dtype=torch.int64)
        text_list.append(processed_text)
        offsets.append(processed_text.size(0))
    label_list = torch.tensor(label_list, dtype=torch.int64)
    offsets = torch.tensor(offsets[:-1]).cumsum(dim=0)
    text_list = torch.cat(text_list)
    return label_list.to(device), text_list.to(device), offsets.to(device)


class TextClassificationModel(nn.Module):
    def __init__(self, vocab_size, embed_dim, num_class, sparse=False):
        super(TextClassificationModel, self).__init__()
        self.embedding = nn.EmbeddingBag(vocab_size, embed_dim, sparse=sparse)
        self.fc = nn.Linear(embed_dim, num_class)
        self.init_weights()

    def init_weights(self):
        initrange = 0.5
        self.embedding.weight.data.uniform_(-initrange, initrange)
        self.fc.weight.data.uniform_(-initrange, initrange)
        self.fc.bias.data.zero_()

    def forward(self, text, offsets):
        embedded = self.embedding(text, offsets)
        return self.fc(embedded)


num_class = len(set([label for (label, text) in train_iter]))
vocab_size = len(vocab)
emsize = 16
EPOCHS, LR, BATCH_SIZE = 4, 5, 8


class Run:
    """The tutorial's module-level state (model, criterion, optimizer, scheduler, loaders)
    and its ``train`` / ``evaluate`` functions."""

    def __init__(self, seed=0, shuffle=True):
        torch.manual_seed(seed)
        self.model = TextClassificationModel(vocab_size, emsize, num_class).to(device)
        self.criterion = torch.nn.CrossEntropyLoss()
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=LR)
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, 1.0, gamma=0.1)
        train_iter, test_iter = AG_NEWS(), AG_NEWS(split="test")
        train_dataset = to_map_style_dataset(train_iter)
        self.test_dataset = to_map_style_dataset(test_iter)
        num_train = int(len(train_dataset) * 0.95)
        self.split_train_, self.split_valid_ = random_split(
            train_dataset, [num_train, len(train_dataset) - num_train])
        self.train_dataloader = DataLoader(self.split_train_, batch_size=BATCH_SIZE,
                                           shuffle=shuffle, collate_fn=collate_batch)
        self.valid_dataloader = DataLoader(self.split_valid_, batch_size=BATCH_SIZE,
                                           shuffle=shuffle, collate_fn=collate_batch)
        self.test_dataloader = DataLoader(self.test_dataset, batch_size=BATCH_SIZE,
                                          shuffle=shuffle, collate_fn=collate_batch)
        self.step_fn = self.train_step
        self.losses = []

    def train_step(self, label, text, offsets):
        model, criterion, optimizer = self.model, self.criterion, self.optimizer
        optimizer.zero_grad()
        predicted_label = model(text, offsets)
        loss = criterion(predicted_label, label)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1)
        optimizer.step()
        return loss, predicted_label

    def train(self, dataloader, epoch):
        self.model.train()
        total_acc, total_count = 0, 0
        log_interval = 5
        start_time = time.time()

        for idx, (label, text, offsets) in enumerate(dataloader):
            loss, predicted_label = self.step_fn(label, text, offsets)
            self.losses.append(loss.item())
            total_acc += (predicted_label.argmax(1) == label).sum().item()
            total_count += label.size(0)
            if idx % log_interval == 0 and idx > 0:
                elapsed = time.time() - start_time
                print(
                    "| epoch {:3d} | {:5d}/{:5d} batches "
                    "| accuracy {:8.3f} | {:5.2f}s".format(
                        epoch, idx, len(dataloader), total_acc / total_count, elapsed
                    )
                )
                total_acc, total_count = 0, 0
                start_time = time.time()

    def evaluate(self, dataloader):
        model, criterion = self.model, self.criterion
        model.eval()
        total_acc, total_count = 0, 0

        with torch.no_grad():
            for idx, (label, text, offsets) in enumerate(dataloader):
                predicted_label = model(text, offsets)
                loss = criterion(predicted_label, label)  # noqa: F841 (as in the tutorial)
                total_acc += (predicted_label.argmax(1) == label).sum().item()
                total_count += label.size(0)
        return total_acc / total_count

    def fit(self):
        total_accu = None
        self.accus, self.lrs = [], []
        for epoch in range(1, EPOCHS + 1):
            epoch_start_time = time.time()
            self.train(self.train_dataloader, epoch)
            accu_val = self.evaluate(self.valid_dataloader)
            if total_accu is not None and total_accu > accu_val:
                self.scheduler.step()
            else:
                total_accu = accu_val
            self.accus.append(accu_val)
            self.lrs.append(self.optimizer.param_groups[0]["lr"])
            print("-" * 59)
            print(
                "| end of epoch {:3d} | time: {:5.2f}s | "
                "valid accuracy {:8.3f} ".format(
                    epoch, time.time() - epoch_start_time, accu_val
                )
            )
            print("-" * 59)


ag_news_label = {1: "World", 2: "Sports", 3: "Business", 4: "Sci/Tec"}


def predict(model, text, text_pipeline):
    with torch.no_grad():
        text = torch.tensor(text_pipeline(text))
        output = model(text, torch.tensor([0]))
        return output.argmax(1).item() + 1


# ================================================================ tests ====================
def test_pipelines_and_collate_batch():
    assert text_pipeline("The zebra") == [vocab["the"], 0]
    assert label_pipeline("10") == 9
    label, text, offsets = collate_batch([(3, "the bank ."), (1, "war"), (2, "goal goal !")])
    assert label.tolist() == [2, 0, 1] and offsets.tolist() == [0, 3, 4]
    assert text.dtype == torch.int64 and text.shape == (7,)


def test_embedding_bag_with_offsets_matches_numpy_mean():
    torch.manual_seed(0)
    model = TextClassificationModel(vocab_size, emsize, num_class)
    label, text, offsets = collate_batch(AG_NEWS(n=5))
    w = model.embedding.weight.detach().numpy()
    bounds = [*offsets.tolist(), text.numel()]
    idx = text.numpy()
    bags = np.stack([w[idx[a:b]].mean(0) for a, b in zip(bounds, bounds[1:])])
    want = bags @ model.fc.weight.detach().numpy().T + model.fc.bias.detach().numpy()
    np.testing.assert_allclose(model(text, offsets).detach().numpy(), want, rtol=1e-5,
                               atol=1e-6)


def test_random_split_and_dataloaders():
    run = Run()
    assert len(run.split_train_) == 152 and len(run.split_valid_) == 8
    idx = sorted(run.split_train_.indices + run.split_valid_.indices)
    assert idx == list(range(160))
    assert len(run.train_dataloader) == 19
    label, text, offsets = next(iter(run.train_dataloader))
    assert label.shape == (8,) and offsets.shape == (8,) and offsets[0].item() == 0


def test_training_learns_topics_and_steps_lr_on_plateau():
    run = Run()
    before = run.evaluate(run.test_dataloader)
    run.fit()
    accu_test = run.evaluate(run.test_dataloader)
    print("test accuracy {:8.3f}".format(accu_test))
    assert accu_test > 0.85 > before + 0.3, (before, accu_test, run.accus)
    # StepLR(gamma=0.1) is stepped only when validation accuracy dropped
    drops, best = 0, None
    for a, lr in zip(run.accus, run.lrs):
        if best is not None and best > a:
            drops += 1
        else:
            best = a
        assert lr == pytest.approx(LR * 0.1 ** drops)
    ex_text_str = "Coach says the team scored a late goal to win the match."
    assert ag_news_label[predict(run.model, ex_text_str, text_pipeline)] == "Sports"


def test_old_version_sparse_embedding_bag_trains():
    # the first version: EmbeddingBag(sparse=True), generate_batch, SGD lr 4.0
    def generate_batch(batch):
        label = torch.tensor([entry[0] for entry in batch])
        text = [entry[1] for entry in batch]
        offsets = [0] + [len(entry) for entry in text]
        offsets = torch.tensor(offsets[:-1]).cumsum(dim=0)
        text = torch.cat(text)
        return text, offsets, label

    torch.manual_seed(0)
    data = [(label - 1, torch.tensor(text_pipeline(t))) for label, t in AG_NEWS()]
    model = TextClassificationModel(vocab_size, emsize, num_class, sparse=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=4.0)
    criterion = torch.nn.CrossEntropyLoss().to(device)
    losses = []
    for epoch in range(3):
        for text, offsets, cls in DataLoader(data, batch_size=16, shuffle=True,
                                             collate_fn=generate_batch):
            optimizer.zero_grad()
            output = model(text, offsets)
            loss = criterion(output, cls)
            loss.backward()
            assert model.embedding.weight.grad.is_sparse
            optimizer.step()
            losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])


def test_compiled_training_step_matches_eager():
    runs = []
    for compiled in (False, True):
        run = Run(shuffle=False)
        if compiled:
            run.step_fn = torch.compile(run.train_step, mode="always")
        for epoch in (1, 2):
            run.train(run.train_dataloader, epoch)
            run.scheduler.step()
        runs.append(run)
    eager, comp = runs
    np.testing.assert_allclose(comp.losses, eager.losses, rtol=1e-4, atol=1e-5)
    assert_params_close(comp.model, eager.model)
    st = comp.step_fn.stats()
    # 38 steps; the text length changes every batch (dynamic after the first change) and
    # the last batch is smaller
    assert not st["graph_breaks"] and st["eager_calls"] == 0, st
    assert st["captures"] <= 3 and st["cache_hits"] >= 35, st


def test_gradcheck_embedding_bag_model():
    torch.manual_seed(0)
    model = TextClassificationModel(12, 3, 4).double()
    text, offsets = torch.tensor([1, 5, 5, 7, 2, 11, 0]), torch.tensor([0, 3, 3, 4])
    w, fw_, fb = grad_leaves(model.embedding.weight, model.fc.weight, model.fc.bias)

    def f(w, fw_, fb):
        params = {"embedding.weight": w, "fc.weight": fw_, "fc.bias": fb}
        return torch.func.functional_call(model, params, (text, offsets))

    assert torch.autograd.gradcheck(f, (w, fw_, fb), eps=1e-6, atol=1e-6)


def test_onnx_export(tmp_path):
    torch.manual_seed(0)
    model = TextClassificationModel(vocab_size, emsize, num_class).eval()
    label, text, offsets = collate_batch(AG_NEWS(n=4))
    assert_onnx_export_matches(model, (text, offsets), tmp_path / "textcls.onnx")
