"""pytorch/tutorials ``intermediate_source/char_rnn_classification_tutorial.py`` ported to fw.

The tutorial's current form: one-hot letters (``letterToTensor``/``lineToTensor``), a
``CharRNN`` of ``nn.RNN`` + Linear + LogSoftmax, a ``NamesDataset`` split with
``random_split``, minibatches of single names whose NLLLoss is summed, ``clip_grad_norm_``
and SGD; then ``evaluate`` builds a confusion matrix and ``predict`` prints the top guesses.
Only the imports changed; the 18 downloaded name files are replaced by a tiny synthetic set
of names per language (each language has its own letters and ending), and the sizes are
smaller (hidden 32, 12 epochs).
"""
# ruff: noqa: UP008, E741, N802, N803, N806  (the original's names and lines are kept)

import random
import string
import unicodedata

import numpy as np
import pytest

import framework as fw
import framework.nn as nn
from framework.utils.data import Dataset

from ._checks import assert_stats

torch = fw

allowed_characters = string.ascii_letters + " .,;'" + "_"
n_letters = len(allowed_characters)


# Turn a Unicode string to plain ASCII, thanks to https://stackoverflow.com/a/518232/2809427
def unicodeToAscii(s):
    return ''.join(
        c for c in unicodedata.normalize('NFD', s)
        if unicodedata.category(c) != 'Mn'
        and c in allowed_characters
    )


# Find letter index from all_letters, e.g. "a" = 0
def letterToIndex(letter):
    # return our out-of-vocabulary character if we encounter a letter unknown to our model
    if letter not in allowed_characters:
        return allowed_characters.find("_")
    else:
        return allowed_characters.find(letter)


# Just for demonstration, turn a letter into a <1 x n_letters> Tensor
def letterToTensor(letter):
    tensor = torch.zeros(1, n_letters)
    tensor[0][letterToIndex(letter)] = 1
    return tensor


# Turn a line into a <line_length x 1 x n_letters>,
# or an array of one-hot letter vectors
def lineToTensor(line):
    tensor = torch.zeros(len(line), 1, n_letters)
    for li, letter in enumerate(line):
        tensor[li][0][letterToIndex(letter)] = 1
    return tensor


# -- synthetic stand-in for data/names/*.txt ------------------------------------------------
_LANGS = {"Italian": ("aeiou", "lrt", "o"), "Russian": ("aoy", "kvz", "ov"),
          "Japanese": ("aiu", "kmt", "a"), "German": ("eiu", "bnst", "er")}


def synthetic_names(n_per_lang=10, seed=0):
    """{language: [names]}: each language draws from its own vowels and consonants and
    ends its names the same way, so the spelling says the language."""
    rng = random.Random(seed)
    out = {}
    for lang, (vowels, cons, end) in _LANGS.items():
        names = []
        for _ in range(n_per_lang):
            body = "".join(rng.choice(cons) + rng.choice(vowels)
                           for _ in range(rng.randint(1, 3)))
            names.append(unicodeToAscii(body.capitalize() + end))
        out[lang] = names
    return out


class NamesDataset(Dataset):

    def __init__(self, category_lines):
        self.load_time = 0  # the original stores time.localtime here
        labels_set = set()  # set of all classes

        self.data = []
        self.data_tensors = []
        self.labels = []
        self.labels_tensors = []

        # read all the ``.txt`` files in the specified directory
        for label, lines in category_lines.items():  # the original globs data_dir
            labels_set.add(label)
            for name in lines:
                self.data.append(name)
                self.data_tensors.append(lineToTensor(name))
                self.labels.append(label)

        # Cache the tensor representation of the labels
        self.labels_uniq = sorted(labels_set)  # the original: list(labels_set), unordered
        for idx in range(len(self.labels)):
            temp_tensor = torch.tensor([self.labels_uniq.index(self.labels[idx])], dtype=torch.long)
            self.labels_tensors.append(temp_tensor)

    def __len__(self):
        return len(self.data)

    def __getitem__(self, idx):
        data_item = self.data[idx]
        data_label = self.labels[idx]
        data_tensor = self.data_tensors[idx]
        label_tensor = self.labels_tensors[idx]

        return label_tensor, data_tensor, data_label, data_item


class CharRNN(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super(CharRNN, self).__init__()

        self.rnn = nn.RNN(input_size, hidden_size)
        self.h2o = nn.Linear(hidden_size, output_size)
        self.softmax = nn.LogSoftmax(dim=1)

    def forward(self, line_tensor):
        rnn_out, hidden = self.rnn(line_tensor)
        output = self.h2o(hidden[0])
        output = self.softmax(output)

        return output


def label_from_output(output, output_labels):
    top_n, top_i = output.topk(1)
    label_i = top_i[0].item()
    return output_labels[label_i], label_i


def train(rnn, training_data, n_epoch=10, n_batch_size=64, report_every=50, learning_rate=0.2,
          criterion=nn.NLLLoss()):
    """
    Learn on a batch of training_data for a specified number of iterations and reporting thresholds
    """
    # Keep track of losses for plotting
    current_loss = 0
    all_losses = []
    rnn.train()
    optimizer = torch.optim.SGD(rnn.parameters(), lr=learning_rate)

    print(f"training on data set with n = {len(training_data)}")

    for iter in range(1, n_epoch + 1):
        rnn.zero_grad()  # clear the gradients

        # create some minibatches
        # we cannot use dataloaders because each of our names is a different length
        batches = list(range(len(training_data)))
        random.shuffle(batches)
        batches = np.array_split(batches, len(batches) // n_batch_size)

        for idx, batch in enumerate(batches):
            batch_loss = 0
            for i in batch:  # for each example in this batch
                (label_tensor, text_tensor, label, text) = training_data[i]
                output = rnn.forward(text_tensor)
                loss = criterion(output, label_tensor)
                batch_loss += loss

            # optimize parameters
            batch_loss.backward()
            nn.utils.clip_grad_norm_(rnn.parameters(), 3)
            optimizer.step()
            optimizer.zero_grad()

            current_loss += batch_loss.item() / len(batch)

        all_losses.append(current_loss / len(batches))
        if iter % report_every == 0:
            print(f"{iter} ({iter / n_epoch:.0%}): \t average batch loss = {all_losses[-1]}")
        current_loss = 0

    return all_losses


def evaluate(rnn, testing_data, classes):
    confusion = torch.zeros(len(classes), len(classes))

    rnn.eval()  # set to eval mode
    with torch.no_grad():  # do not record the gradients during eval phase
        for i in range(len(testing_data)):
            (label_tensor, text_tensor, label, text) = testing_data[i]
            output = rnn(text_tensor)
            guess, guess_i = label_from_output(output, classes)
            label_i = classes.index(label)
            confusion[label_i][guess_i] += 1

    # Normalize by dividing every row by its sum
    for i in range(len(classes)):
        denom = confusion[i].sum()
        if denom > 0:
            confusion[i] = confusion[i] / denom
    return confusion


evaluate.__test__ = False


def predict(rnn, input_line, all_categories, n_predictions=3):
    print('\n> %s' % input_line)
    with torch.no_grad():
        output = rnn(lineToTensor(input_line))

        # Get top N categories
        topv, topi = output.topk(n_predictions, 1, True)
        predictions = []

        for i in range(n_predictions):
            value = topv[0][i].item()
            category_index = topi[0][i].item()
            print('(%.2f) %s' % (value, all_categories[category_index]))
            predictions.append([value, all_categories[category_index]])
    return predictions


# -- tests -----------------------------------------------------------------------------------
def _setup(seed=2024):
    torch.manual_seed(seed)
    random.seed(seed)
    alldata = NamesDataset(synthetic_names())
    train_set, test_set = torch.utils.data.random_split(
        alldata, [.85, .15], generator=torch.Generator().manual_seed(2024))
    rnn = CharRNN(n_letters, 32, len(alldata.labels_uniq))
    return alldata, train_set, test_set, rnn


def test_one_hot_helpers():
    t = letterToTensor('J')
    assert t.shape == (1, n_letters) and t.sum().item() == 1.0
    assert t[0, letterToIndex('J')].item() == 1.0
    line = lineToTensor('Jo-nes')  # '-' is out of vocabulary: the '_' column
    assert line.size() == (6, 1, n_letters)
    np.testing.assert_array_equal(line.numpy().argmax(-1)[:, 0],
                                  [letterToIndex(c) for c in 'Jo_nes'])
    assert unicodeToAscii('Ślusàrski') == 'Slusarski'


def test_training_lowers_the_loss_and_classifies(capsys):
    alldata, train_set, test_set, rnn = _setup()
    assert (len(train_set), len(test_set)) == (34, 6)
    confusion0 = evaluate(rnn, alldata, alldata.labels_uniq)
    all_losses = train(rnn, train_set, n_epoch=12, n_batch_size=8, report_every=4,
                       learning_rate=0.2)
    assert all_losses[-1] < 0.5 * all_losses[0], all_losses
    confusion = evaluate(rnn, alldata, alldata.labels_uniq)
    acc0 = confusion0.diagonal().mean().item()
    acc = confusion.diagonal().mean().item()
    assert acc > 0.8 and acc > acc0, (acc0, acc)
    np.testing.assert_allclose(confusion.sum(1).numpy(), 1.0, rtol=1e-6)
    preds = predict(rnn, 'Kovakov', alldata.labels_uniq)
    assert preds[0][1] == 'Russian' and preds[0][0] > preds[1][0] > preds[2][0]
    assert 'average batch loss' in capsys.readouterr().out


def test_rnn_matches_numpy_recurrence():
    """nn.RNN's tanh recurrence, written out in NumPy, gives CharRNN's output."""
    _, _, _, rnn = _setup()
    x = lineToTensor('Satoshi')
    with torch.no_grad():
        got = rnn(x).numpy()
    p = {k: v.numpy().astype(np.float64) for k, v in rnn.state_dict().items()}
    h = np.zeros(32)
    for xt in x.numpy()[:, 0]:
        h = np.tanh(p['rnn.weight_ih_l0'] @ xt + p['rnn.bias_ih_l0'] +
                    p['rnn.weight_hh_l0'] @ h + p['rnn.bias_hh_l0'])
    logits = p['h2o.weight'] @ h + p['h2o.bias']
    want = logits - np.log(np.exp(logits - logits.max()).sum()) - logits.max()
    np.testing.assert_allclose(got[0], want, rtol=1e-5, atol=1e-5)


def _run_batches(compiled, steps=4):
    """train()'s inner batch step (names of one length, so one compiled graph)."""
    alldata, _, _, rnn = _setup()
    criterion = nn.NLLLoss()
    optimizer = torch.optim.SGD(rnn.parameters(), lr=0.2)
    rnn.train()

    def step(text_tensors, label_tensors):
        batch_loss = 0
        for text_tensor, label_tensor in zip(text_tensors, label_tensors):
            output = rnn.forward(text_tensor)
            loss = criterion(output, label_tensor)
            batch_loss += loss
        batch_loss.backward()
        nn.utils.clip_grad_norm_(rnn.parameters(), 3)
        optimizer.step()
        optimizer.zero_grad()
        return batch_loss

    fn = torch.compile(step, mode="always") if compiled else step
    by_len = [i for i in range(len(alldata)) if len(alldata.data[i]) == 5]
    rng = random.Random(0)
    losses = []
    for _ in range(steps):
        batch = rng.sample(by_len, 4)
        texts = torch.stack([alldata[i][1] for i in batch])
        labels = torch.stack([alldata[i][0] for i in batch])
        losses.append(fn(texts, labels).item())
    return losses, rnn, fn


def test_compiled_batch_step_matches_eager_and_compiles_once():
    l_eager, m_eager, _ = _run_batches(False)
    l_comp, m_comp, fn = _run_batches(True)
    np.testing.assert_allclose(l_comp, l_eager, rtol=1e-4, atol=1e-5)
    for (k, a), (_, b) in zip(m_eager.state_dict().items(), m_comp.state_dict().items()):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-4, atol=1e-5, err_msg=k)
    assert_stats(fn, eager_reason=None, captures=1, num_recompiles=0)


def test_gradcheck_through_rnn_float64():
    torch.manual_seed(0)
    rnn = CharRNN(n_letters, 6, 3).double()
    x = lineToTensor('Abe').double()
    target = torch.tensor([2])
    w = rnn.rnn.weight_hh_l0.detach().clone().requires_grad_()

    def loss_of(w_hh, line):
        out, h = fw.func.functional_call(rnn.rnn, {'weight_hh_l0': w_hh}, (line,))
        return nn.NLLLoss()(rnn.softmax(rnn.h2o(h[0])), target)

    assert fw.autograd.gradcheck(loss_of, (w, x.requires_grad_()), eps=1e-6, atol=1e-6)


def test_onnx_export_matches_eager(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    _, _, _, rnn = _setup()
    rnn.eval()
    x = lineToTensor('Dovesky')
    path = str(tmp_path / "char_rnn.onnx")
    fw.onnx.export(rnn, (x,), path, input_names=["line"], output_names=["logp"],
                   dynamic_axes={"line": {0: "length"}})
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    for name in ('Dovesky', 'Jackson', 'Satoshi', 'Li'):
        x = lineToTensor(name)
        with torch.no_grad():
            want = rnn(x).numpy()
        np.testing.assert_allclose(sess.run(None, {"line": x.numpy()})[0], want,
                                   rtol=1e-5, atol=1e-5, err_msg=name)


def test_state_dict_round_trip(tmp_path):
    _, _, _, rnn = _setup()
    torch.save(rnn.state_dict(), tmp_path / "rnn.pt")
    fresh = CharRNN(n_letters, 32, 4)
    fresh.load_state_dict(torch.load(tmp_path / "rnn.pt"))
    x = lineToTensor('Hinton')
    with torch.no_grad():
        np.testing.assert_array_equal(fresh(x).numpy(), rnn(x).numpy())
