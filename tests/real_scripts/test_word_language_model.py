"""pytorch/examples word_language_model (data.py, model.py, main.py, generate.py) ported to
``fw`` with only the imports renamed; argparse becomes an ``Args`` object and Wikitext-2 a
small synthetic corpus of repeating sentences, so a few epochs learn it.

Lines changed beyond the rename are marked ``# GAP:`` (whole-module ``torch.save`` /
``torch.load`` with ``safe_globals``: ``fw.save`` stores tensors and containers only)."""

import math
import os
import time

import numpy as np
import pytest

import framework as fw
import framework.nn as nn
import framework.nn.functional as F

from ._checks import grad_leaves


# -- data.py --------------------------------------------------------------------------------
class Dictionary:
    def __init__(self):
        self.word2idx = {}
        self.idx2word = []

    def add_word(self, word):
        if word not in self.word2idx:
            self.idx2word.append(word)
            self.word2idx[word] = len(self.idx2word) - 1
        return self.word2idx[word]

    def __len__(self):
        return len(self.idx2word)


class Corpus:
    def __init__(self, path):
        self.dictionary = Dictionary()
        self.train = self.tokenize(os.path.join(path, 'train.txt'))
        self.valid = self.tokenize(os.path.join(path, 'valid.txt'))
        self.test = self.tokenize(os.path.join(path, 'test.txt'))

    def tokenize(self, path):
        """Tokenizes a text file."""
        assert os.path.exists(path)
        # Add words to the dictionary
        with open(path, encoding="utf8") as f:
            for line in f:
                words = line.split() + ['<eos>']
                for word in words:
                    self.dictionary.add_word(word)

        # Tokenize file content
        with open(path, encoding="utf8") as f:
            idss = []
            for line in f:
                words = line.split() + ['<eos>']
                ids = []
                for word in words:
                    ids.append(self.dictionary.word2idx[word])
                idss.append(fw.tensor(ids).type(fw.int64))
            ids = fw.cat(idss)

        return ids


# -- model.py -------------------------------------------------------------------------------
class RNNModel(nn.Module):
    """Container module with an encoder, a recurrent module, and a decoder."""

    def __init__(self, rnn_type, ntoken, ninp, nhid, nlayers, dropout=0.5, tie_weights=False):
        super().__init__()
        self.ntoken = ntoken
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        if rnn_type in ['LSTM', 'GRU']:
            self.rnn = getattr(nn, rnn_type)(ninp, nhid, nlayers, dropout=dropout)
        else:
            try:
                nonlinearity = {'RNN_TANH': 'tanh', 'RNN_RELU': 'relu'}[rnn_type]
            except KeyError as e:
                raise ValueError("""An invalid option for `--model` was supplied,
                                 options are ['LSTM', 'GRU', 'RNN_TANH' or 'RNN_RELU']""") from e
            self.rnn = nn.RNN(ninp, nhid, nlayers, nonlinearity=nonlinearity, dropout=dropout)
        self.decoder = nn.Linear(nhid, ntoken)

        if tie_weights:
            if nhid != ninp:
                raise ValueError('When using the tied flag, nhid must be equal to emsize')
            self.decoder.weight = self.encoder.weight

        self.init_weights()

        self.rnn_type = rnn_type
        self.nhid = nhid
        self.nlayers = nlayers

    def init_weights(self):
        initrange = 0.1
        nn.init.uniform_(self.encoder.weight, -initrange, initrange)
        nn.init.zeros_(self.decoder.bias)
        nn.init.uniform_(self.decoder.weight, -initrange, initrange)

    def forward(self, input, hidden):
        emb = self.drop(self.encoder(input))
        output, hidden = self.rnn(emb, hidden)
        output = self.drop(output)
        decoded = self.decoder(output)
        decoded = decoded.view(-1, self.ntoken)
        return F.log_softmax(decoded, dim=1), hidden

    def init_hidden(self, bsz):
        weight = next(self.parameters())
        if self.rnn_type == 'LSTM':
            return (weight.new_zeros(self.nlayers, bsz, self.nhid),
                    weight.new_zeros(self.nlayers, bsz, self.nhid))
        else:
            return weight.new_zeros(self.nlayers, bsz, self.nhid)


class PositionalEncoding(nn.Module):
    """Sine/cosine positional encodings added to the embeddings."""

    def __init__(self, d_model, dropout=0.1, max_len=5000):
        super().__init__()
        self.dropout = nn.Dropout(p=dropout)

        pe = fw.zeros(max_len, d_model)
        position = fw.arange(0, max_len, dtype=fw.float).unsqueeze(1)
        div_term = fw.exp(fw.arange(0, d_model, 2).float() * (-math.log(10000.0) / d_model))
        pe[:, 0::2] = fw.sin(position * div_term)
        pe[:, 1::2] = fw.cos(position * div_term)
        pe = pe.unsqueeze(0).transpose(0, 1)
        self.register_buffer('pe', pe)

    def forward(self, x):
        x = x + self.pe[:x.size(0), :]
        return self.dropout(x)


class TransformerModel(nn.Transformer):
    """Container module with an encoder, a recurrent or transformer module, and a decoder."""

    def __init__(self, ntoken, ninp, nhead, nhid, nlayers, dropout=0.5):
        super().__init__(d_model=ninp, nhead=nhead, dim_feedforward=nhid,
                                               num_encoder_layers=nlayers)
        self.model_type = 'Transformer'
        self.src_mask = None
        self.pos_encoder = PositionalEncoding(ninp, dropout)

        self.input_emb = nn.Embedding(ntoken, ninp)
        self.ninp = ninp
        self.decoder = nn.Linear(ninp, ntoken)

        self.init_weights()

    def _generate_square_subsequent_mask(self, sz):
        return fw.log(fw.tril(fw.ones(sz, sz)))

    def init_weights(self):
        initrange = 0.1
        nn.init.uniform_(self.input_emb.weight, -initrange, initrange)
        nn.init.zeros_(self.decoder.bias)
        nn.init.uniform_(self.decoder.weight, -initrange, initrange)

    def forward(self, src, has_mask=True):
        if has_mask:
            device = src.device
            if self.src_mask is None or self.src_mask.size(0) != len(src):
                mask = self._generate_square_subsequent_mask(len(src)).to(device)
                self.src_mask = mask
        else:
            self.src_mask = None

        src = self.input_emb(src) * math.sqrt(self.ninp)
        src = self.pos_encoder(src)
        output = self.encoder(src, mask=self.src_mask)
        output = self.decoder(output)
        return F.log_softmax(output, dim=-1)


# -- main.py --------------------------------------------------------------------------------
class Args:
    """main.py's argparse defaults, shrunk (emsize/nhid/batch/bptt) to run in seconds."""

    def __init__(self, model='LSTM', **kw):
        self.model, self.emsize, self.nhid, self.nlayers = model, 16, 16, 2
        self.lr, self.clip, self.epochs, self.batch_size, self.bptt = 20, 0.25, 3, 4, 6
        self.dropout, self.tied, self.seed, self.log_interval = 0.2, False, 1111, 10
        self.nhead, self.dry_run, self.use_optimizer = 2, False, False
        self.__dict__.update(kw)


SENTENCES = ["the cat sat on the mat", "a dog ran to the park", "we like green tea"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """Wikitext-2's three files, as a repeating sequence of three sentences."""
    path = tmp_path_factory.mktemp("wikitext-synthetic")
    for name, reps in (("train.txt", 30), ("valid.txt", 6), ("test.txt", 6)):
        with open(path / name, "w", encoding="utf8") as f:
            f.write("\n".join(SENTENCES * reps) + "\n")
    return str(path)


def batchify(data, bsz, device="cpu"):
    # Work out how cleanly we can divide the dataset into bsz parts.
    nbatch = data.size(0) // bsz
    # Trim off any extra elements that wouldn't cleanly fit (remainders).
    data = data.narrow(0, 0, nbatch * bsz)
    # Evenly divide the data across the bsz batches.
    data = data.view(bsz, -1).t().contiguous()
    return data.to(device)


def repackage_hidden(h):
    """Wraps hidden states in new Tensors, to detach them from their history."""

    if isinstance(h, fw.Tensor):
        return h.detach()
    else:
        return tuple(repackage_hidden(v) for v in h)


class Main:
    """main.py's module-level state (args, corpus, model, criterion, lr) and functions."""

    eval_batch_size = 2

    def __init__(self, data_dir, args):
        self.args = args
        fw.manual_seed(args.seed)
        self.device = fw.device("cpu")
        self.corpus = corpus = Corpus(data_dir)
        self.train_data = batchify(corpus.train, args.batch_size)
        self.val_data = batchify(corpus.valid, self.eval_batch_size)
        self.test_data = batchify(corpus.test, self.eval_batch_size)
        ntokens = len(corpus.dictionary)
        if args.model == 'Transformer':
            self.model = TransformerModel(ntokens, args.emsize, args.nhead, args.nhid,
                                          args.nlayers, args.dropout).to(self.device)
        else:
            self.model = RNNModel(args.model, ntokens, args.emsize, args.nhid, args.nlayers,
                                  args.dropout, args.tied).to(self.device)
        self.criterion = nn.NLLLoss()
        if args.use_optimizer:
            self.optimizer = fw.optim.AdamW(self.model.parameters(), lr=args.lr)
        self.lr = args.lr
        self.step_fn = self.train_step
        self.losses = []

    def get_batch(self, source, i):
        seq_len = min(self.args.bptt, len(source) - 1 - i)
        data = source[i:i+seq_len]
        target = source[i+1:i+1+seq_len].view(-1)
        return data, target

    def evaluate(self, data_source):
        args, model, criterion = self.args, self.model, self.criterion
        # Turn on evaluation mode which disables dropout.
        model.eval()
        total_loss = 0.
        ntokens = len(self.corpus.dictionary)
        if args.model != 'Transformer':
            hidden = model.init_hidden(self.eval_batch_size)
        with fw.no_grad():
            for i in range(0, data_source.size(0) - 1, args.bptt):
                data, targets = self.get_batch(data_source, i)
                if args.model == 'Transformer':
                    output = model(data)
                    output = output.view(-1, ntokens)
                else:
                    output, hidden = model(data, hidden)
                    hidden = repackage_hidden(hidden)
                total_loss += len(data) * criterion(output, targets).item()
        return total_loss / (len(data_source) - 1)

    def train_step(self, data, targets, hidden, lr):
        """The body of main.py's batch loop, up to ``total_loss += loss.item()``: the unit
        that the compiled tests put under ``fw.compile``."""
        args, model, criterion = self.args, self.model, self.criterion
        ntokens = len(self.corpus.dictionary)
        if args.use_optimizer:
            self.optimizer.zero_grad()
        else:
            model.zero_grad()
        if args.model == 'Transformer':
            output = model(data)
            output = output.view(-1, ntokens)
        else:
            hidden = repackage_hidden(hidden)
            output, hidden = model(data, hidden)
        loss = criterion(output, targets)
        loss.backward()

        # `clip_grad_norm` helps prevent the exploding gradient problem in RNNs / LSTMs.
        fw.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        if args.use_optimizer:
            self.optimizer.step()
        else:
            for p in model.parameters():
                p.data.add_(p.grad, alpha=-lr)
        return loss, hidden

    def train(self, epoch):
        args, model = self.args, self.model
        # Turn on training mode which enables dropout.
        model.train()
        total_loss = 0.
        start_time = time.time()
        hidden = None
        if args.model != 'Transformer':
            hidden = model.init_hidden(args.batch_size)
        for batch, i in enumerate(range(0, self.train_data.size(0) - 1, args.bptt)):
            data, targets = self.get_batch(self.train_data, i)
            loss, hidden = self.step_fn(data, targets, hidden, self.lr)

            total_loss += loss.item()
            self.losses.append(loss.item())

            if batch % args.log_interval == 0 and batch > 0:
                cur_loss = total_loss / args.log_interval
                elapsed = time.time() - start_time
                nbatches = len(self.train_data) // args.bptt
                ms = elapsed * 1000 / args.log_interval
                print(f'| epoch {epoch:3d} | {batch:5d}/{nbatches:5d} batches | lr '
                      f'{self.lr:02.2f} | ms/batch {ms:5.2f} | loss {cur_loss:5.2f} | ppl '
                      f'{math.exp(cur_loss):8.2f}')
                total_loss = 0
                start_time = time.time()
            if args.dry_run:
                break

    def export_onnx(self, path, batch_size, seq_len):
        model = self.model
        model.eval()
        dummy_input = fw.LongTensor(seq_len * batch_size).zero_().view(-1, batch_size).to(
            self.device)
        hidden = model.init_hidden(batch_size)
        fw.onnx.export(model, (dummy_input, hidden), path)

    def fit(self, save_path):
        """main.py's epoch loop: train, validate, save the best model, anneal lr by 4."""
        best_val_loss = None
        self.val_losses = []
        for epoch in range(1, self.args.epochs + 1):
            self.train(epoch)
            val_loss = self.evaluate(self.val_data)
            self.val_losses.append(val_loss)
            # Save the model if the validation loss is the best we've seen so far.
            if not best_val_loss or val_loss < best_val_loss:
                with open(save_path, 'wb') as f:
                    fw.save(self.model.state_dict(), f)  # GAP: torch.save(model, f)
                best_val_loss = val_loss
            else:
                # Anneal the learning rate if no improvement has been seen in the validation
                # dataset.
                self.lr /= 4.0
        return best_val_loss


# -- generate.py ----------------------------------------------------------------------------
def generate(model, corpus, words, temperature=1.0, seed=1111, device="cpu"):
    """generate.py's sampling loop; returns the words instead of writing a file."""
    fw.manual_seed(seed)
    model.eval()
    ntokens = len(corpus.dictionary)
    is_transformer_model = hasattr(model, 'model_type') and model.model_type == 'Transformer'
    if not is_transformer_model:
        hidden = model.init_hidden(1)
    input = fw.randint(ntokens, (1, 1), dtype=fw.long).to(device)
    out = []
    with fw.no_grad():  # no tracking history
        for i in range(words):
            if is_transformer_model:
                output = model(input, False)
                word_weights = output[-1].squeeze().div(temperature).exp().cpu()
                word_idx = fw.multinomial(word_weights, 1)[0]
                word_tensor = fw.Tensor([[word_idx]]).long().to(device)
                input = fw.cat([input, word_tensor], 0)
            else:
                output, hidden = model(input, hidden)
                word_weights = output.squeeze().div(temperature).exp().cpu()
                word_idx = fw.multinomial(word_weights, 1)[0]
                input.fill_(word_idx)

            word = corpus.dictionary.idx2word[word_idx]
            out.append(word)
    return out


# ================================================================ tests ====================
ALL_MODELS = ['LSTM', 'GRU', 'RNN_TANH', 'RNN_RELU', 'Transformer']


def test_batchify_and_get_batch_follow_the_comments():
    # main.py's comment: the alphabet with batch size 4 becomes 6 rows of 4 columns, and
    # get_batch with bptt 2 gives rows (a g m s), (b h n t) and targets (b h n t), (c i o u)
    m = Main.__new__(Main)
    m.args = Args(bptt=2)
    src = batchify(fw.arange(26), 4)
    assert src.shape == (6, 4) and src[:, 1].tolist() == list(range(6, 12))
    data, target = m.get_batch(src, 0)
    assert data.tolist() == [[0, 6, 12, 18], [1, 7, 13, 19]]
    assert target.tolist() == [1, 7, 13, 19, 2, 8, 14, 20]
    assert m.get_batch(src, 4)[0].shape == (1, 4)         # the last, shorter chunk


def test_corpus_tokenizes_with_eos(data_dir):
    corpus = Corpus(data_dir)
    assert len(corpus.dictionary) == 15 and corpus.dictionary.idx2word[5] == '<eos>'
    assert corpus.train.dtype == fw.int64 and corpus.train.shape == (30 * 19,)
    assert corpus.train[:8].tolist() == [0, 1, 2, 3, 0, 4, 5, 6]


# settings that learn the corpus in 3 epochs; the 2-layer LSTM needs AdamW (main.py's
# --use-optimizer) or a single layer: with plain SGD it sits at the unigram loss for epochs
TRAIN_CONFIGS = {'LSTM': dict(use_optimizer=True, lr=0.02), 'LSTM-1layer': dict(nlayers=1),
                 'GRU': dict(lr=5), 'RNN_TANH': dict(lr=2), 'RNN_RELU': dict(lr=2),
                 'Transformer': dict(lr=5)}


@pytest.mark.parametrize("config", list(TRAIN_CONFIGS))
def test_training_lowers_validation_loss_and_anneals(data_dir, tmp_path, config):
    m = Main(data_dir, Args(config.split('-')[0], **TRAIN_CONFIGS[config]))
    before = m.evaluate(m.val_data)
    assert abs(before - math.log(15)) < 0.3                 # about uniform at the start
    best = m.fit(str(tmp_path / "model.pt"))
    assert best < 0.6 * before, (before, m.val_losses)
    assert np.mean(m.losses[-5:]) < 0.6 * np.mean(m.losses[:5])
    # lr annealing: divided by 4 once per epoch without improvement
    worse = sum(b >= a for a, b in zip(np.minimum.accumulate(m.val_losses), m.val_losses[1:]))
    assert m.lr == m.args.lr / 4.0 ** worse
    if config == 'Transformer':
        assert worse == 1          # this run does anneal once


def test_tied_weights_share_one_parameter_and_its_gradient(data_dir):
    m = Main(data_dir, Args('LSTM', tied=True, dropout=0.0))
    model = m.model
    assert model.decoder.weight is model.encoder.weight
    names = [n for n, _ in model.named_parameters()]
    assert 'encoder.weight' in names and 'decoder.weight' not in names
    with pytest.raises(ValueError, match="nhid must be equal to emsize"):
        RNNModel('LSTM', 5, 4, 6, 1, tie_weights=True)
    with pytest.raises(ValueError, match="invalid option"):
        RNNModel('LSTMX', 5, 4, 4, 1)
    data, targets = m.get_batch(m.train_data, 0)
    loss, _ = m.train_step(data, targets, model.init_hidden(4), 0.0)
    # the shared gradient is the sum of the embedding's and the decoder's: compare with an
    # untied copy of the same weights
    untied = RNNModel('LSTM', 15, 16, 16, 2, 0.0, False)
    untied.load_state_dict({**model.state_dict(), 'decoder.weight': model.encoder.weight})
    untied.zero_grad()
    out, _ = untied(data, untied.init_hidden(4))
    nn.NLLLoss()(out, targets).backward()
    want = untied.encoder.weight.grad + untied.decoder.weight.grad
    np.testing.assert_allclose(model.encoder.weight.grad.numpy(), want.numpy(), rtol=1e-5,
                               atol=1e-7)


@pytest.mark.parametrize("kind,optimizer", [('LSTM', False), ('GRU', False),
                                            ('RNN_RELU', False), ('Transformer', False),
                                            ('LSTM', True)])
def test_compiled_training_step_matches_eager(data_dir, kind, optimizer):
    args = dict(epochs=1, use_optimizer=optimizer, tied=kind == 'LSTM')
    if optimizer:
        args['lr'] = 1e-2
    runs = []
    for compiled in (False, True):
        m = Main(data_dir, Args(kind, **args))
        m.train_data = m.train_data[:40]       # 7 steps an epoch, the last one shorter
        if compiled:
            m.step_fn = fw.compile(m.train_step, mode="always")
        m.train(1)
        m.lr /= 4.0                            # annealing: int 20 -> float 5.0
        m.train(2)
        m.captures_after_2 = compiled and m.step_fn.stats()["captures"]
        m.lr /= 4.0                            # a new float: a runtime scalar, no recompile
        m.train(3)
        runs.append(m)
    eager, comp = runs
    np.testing.assert_allclose(comp.losses, eager.losses, rtol=1e-4, atol=1e-5)
    for (name, p), q in zip(eager.model.named_parameters(), comp.model.parameters()):
        np.testing.assert_allclose(q.detach().numpy(), p.detach().numpy(), rtol=1e-4,
                                   atol=1e-5, err_msg=name)
    st = comp.step_fn.stats()
    # AdamW's state is created by its first step, which runs eagerly (once)
    assert st["eager_calls"] == (1 if optimizer else 0) and not st["graph_breaks"], st
    # 3 epochs x 7 steps. Captures in the first two: the first shape, the shorter last
    # chunk (dynamic from then on), lr turning from int 20 into float 5.0 (ints are baked)
    # and, for the Transformer, its cached mask (set, then rebound per length). The third
    # epoch only hits the cache.
    assert len(comp.losses) == 21 and st["captures"] == comp.captures_after_2 <= 6, st


def _gradcheck_model(kind, tied=False):
    fw.manual_seed(0)
    if kind == 'Transformer':
        model = TransformerModel(5, 4, 2, 6, 1, dropout=0.0)
    else:
        model = RNNModel(kind, 5, 4, 4, 2, dropout=0.0, tie_weights=tied)
    return model.double().eval()     # nn.Transformer's own layers keep dropout=0.1


@pytest.mark.parametrize("kind", ALL_MODELS + ['LSTM-tied'])
def test_gradients_match_finite_differences(kind):
    kind, tied = kind.split('-')[0], kind.endswith('tied')
    model = _gradcheck_model(kind, tied)
    data = fw.tensor([[1, 2], [3, 0], [4, 4]])
    names = [n for n, _ in model.named_parameters()]
    if kind == 'Transformer':
        names = [n for n in names if n.startswith(('input_emb', 'encoder.', 'decoder.'))]
        extra = ()
    else:   # the hidden state as an input too
        h = model.init_hidden(2)
        extra = tuple(t.normal_().requires_grad_() for t in (h if kind == 'LSTM' else (h,)))
    params = dict(model.named_parameters())
    inputs = grad_leaves(*(params[n] for n in names)) + extra

    def fn(*xs):
        ps = dict(zip(names, xs[:len(names)]))
        if kind == 'Transformer':
            return fw.func.functional_call(model, ps, (data,))
        hid = xs[len(names):]
        out, hn = fw.func.functional_call(model, ps, (data, hid if kind == 'LSTM' else hid[0]))
        return (out,) + (hn if kind == 'LSTM' else (hn,))

    assert fw.autograd.gradcheck(fn, inputs)


@pytest.mark.parametrize("kind", ALL_MODELS)
def test_onnx_export_matches_eager(data_dir, tmp_path, kind):
    ort = pytest.importorskip("onnxruntime")
    m = Main(data_dir, Args(kind, dropout=0.2))
    path = str(tmp_path / "model.onnx")
    bptt = m.args.bptt
    if kind == 'Transformer':
        # main.py's export_onnx passes (input, hidden); a Transformer takes the tokens only
        m.model.eval()
        fw.onnx.export(m.model, (fw.LongTensor(bptt).zero_().view(-1, 1),), path)
    else:
        m.export_onnx(path, batch_size=1, seq_len=bptt)
    sess = ort.InferenceSession(path)
    x = batchify(m.corpus.test[:bptt], 1)
    if kind == 'Transformer':
        feeds, hidden = [x], None
        with fw.no_grad():
            refs = [m.model(x)]
    else:
        hidden = m.model.init_hidden(1)
        hidden = tuple(h.normal_() for h in hidden) if kind == 'LSTM' else hidden.normal_()
        feeds = [x] + list(hidden if kind == 'LSTM' else (hidden,))
        with fw.no_grad():
            out, hn = m.model(x, hidden)
        refs = [out] + list(hn if kind == 'LSTM' else (hn,))
    names = [i.name for i in sess.get_inputs()]
    got = sess.run(None, {n: f.numpy() for n, f in zip(names, feeds)})
    assert len(got) == len(refs)
    for g, r in zip(got, refs):
        np.testing.assert_allclose(g, r.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", ['GRU', 'Transformer'])
def test_save_load_test_loss_and_generate(data_dir, tmp_path, kind):
    args = Args(kind, **TRAIN_CONFIGS[kind])
    m = Main(data_dir, args)
    save = str(tmp_path / "model.pt")
    m.fit(save)
    # Load the best saved model.
    with open(save, 'rb') as f:
        fresh = Main(data_dir, args).model        # GAP: model = torch.load(f) (whole module)
        fresh.load_state_dict(fw.load(f))
    if args.model in ['RNN_TANH', 'RNN_RELU', 'LSTM', 'GRU']:
        fresh.rnn.flatten_parameters()
    best = min(m.val_losses)
    m.model = fresh
    assert m.evaluate(m.val_data) == pytest.approx(best, rel=1e-6)
    test_loss = m.evaluate(m.test_data)
    assert test_loss < 0.6 * math.log(15)

    words = generate(fresh, m.corpus, 40, temperature=0.5)
    assert words == generate(fresh, m.corpus, 40, temperature=0.5)     # seeded
    assert set(words) <= set(m.corpus.dictionary.idx2word)
    # a trained model continues the sentences: count the bigrams seen in the corpus
    text = " ".join(s + " <eos>" for s in SENTENCES).split()
    bigrams = set(zip(text, text[1:] + text[:1]))
    seen = sum(b in bigrams for b in zip(words, words[1:]))
    assert seen >= 0.8 * (len(words) - 1), words
