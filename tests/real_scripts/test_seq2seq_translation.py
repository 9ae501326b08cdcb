"""pytorch/tutorials ``intermediate_source/seq2seq_translation_tutorial.py`` ported to fw.

The ``Lang`` vocabulary class, ``normalizeString``/``filterPairs``, a batch-first GRU
``EncoderRNN`` and an ``AttnDecoderRNN`` with Bahdanau attention (``torch.bmm``) decoding
``MAX_LENGTH`` steps with teacher forcing (or greedy ``topk`` without a target), padded
index arrays in a ``TensorDataset`` + ``RandomSampler`` DataLoader, two Adam optimizers and
NLLLoss, then ``evaluate`` decoding a sentence. Only the imports changed; the downloaded
eng-fra pairs are replaced by a tiny synthetic French -> English corpus (word for word), and
the sizes are smaller (hidden 32, MAX_LENGTH 6).
"""
# ruff: noqa: UP008, E741, N802, N803, N806  (the original's names and lines are kept)

import random
import re
import unicodedata

import numpy as np
import pytest

import framework as fw
import framework.nn as nn
import framework.nn.functional as F
from framework import optim
from framework.utils.data import DataLoader, RandomSampler, TensorDataset

from ._checks import assert_stats

torch = fw
device = torch.device("cpu")

SOS_token = 0
EOS_token = 1


class Lang:
    def __init__(self, name):
        self.name = name
        self.word2index = {}
        self.word2count = {}
        self.index2word = {0: "SOS", 1: "EOS"}
        self.n_words = 2  # Count SOS and EOS

    def addSentence(self, sentence):
        for word in sentence.split(' '):
            self.addWord(word)

    def addWord(self, word):
        if word not in self.word2index:
            self.word2index[word] = self.n_words
            self.word2count[word] = 1
            self.index2word[self.n_words] = word
            self.n_words += 1
        else:
            self.word2count[word] += 1


# Turn a Unicode string to plain ASCII, thanks to
# https://stackoverflow.com/a/518232/2809427
def unicodeToAscii(s):
    return ''.join(
        c for c in unicodedata.normalize('NFD', s)
        if unicodedata.category(c) != 'Mn'
    )


# Lowercase, trim, and remove non-letter characters
def normalizeString(s):
    s = unicodeToAscii(s.lower().strip())
    s = re.sub(r"([.!?])", r" \1", s)
    s = re.sub(r"[^a-zA-Z!?]+", r" ", s)
    return s.strip()


# -- synthetic stand-in for data/eng-fra.txt --------------------------------------------------
_SUBJ = [("I am", "Je suis"), ("He is", "Il est"), ("She is", "Elle est"),
         ("We are", "Nous sommes"), ("You are", "Vous etes")]
_ADJ = [("tired", "fatigué"), ("happy", "heureux"), ("here", "ici"), ("cold", "froid"),
        ("late", "en retard")]


def readLangs(lang1, lang2, reverse=False):
    lines = [f"{e} {a}.\t{f} {b}." for e, f in _SUBJ for a, b in _ADJ]
    lines.append("The cat sleeps.\tLe chat dort.")  # filtered out: no English prefix
    # Split every line into pairs and normalize
    pairs = [[normalizeString(s) for s in l.split('\t')] for l in lines]

    # Reverse pairs, make Lang instances
    if reverse:
        pairs = [list(reversed(p)) for p in pairs]
        input_lang = Lang(lang2)
        output_lang = Lang(lang1)
    else:
        input_lang = Lang(lang1)
        output_lang = Lang(lang2)

    return input_lang, output_lang, pairs


MAX_LENGTH = 6  # the tutorial: 10

eng_prefixes = (
    "i am ", "i m ",
    "he is", "he s ",
    "she is", "she s ",
    "you are", "you re ",
    "we are", "we re ",
    "they are", "they re "
)


def filterPair(p):
    return len(p[0].split(' ')) < MAX_LENGTH and \
        len(p[1].split(' ')) < MAX_LENGTH and \
        p[1].startswith(eng_prefixes)


def filterPairs(pairs):
    return [pair for pair in pairs if filterPair(pair)]


def prepareData(lang1, lang2, reverse=False):
    input_lang, output_lang, pairs = readLangs(lang1, lang2, reverse)
    print("Read %s sentence pairs" % len(pairs))
    pairs = filterPairs(pairs)
    print("Trimmed to %s sentence pairs" % len(pairs))
    print("Counting words...")
    for pair in pairs:
        input_lang.addSentence(pair[0])
        output_lang.addSentence(pair[1])
    print("Counted words:")
    print(input_lang.name, input_lang.n_words)
    print(output_lang.name, output_lang.n_words)
    return input_lang, output_lang, pairs


class EncoderRNN(nn.Module):
    def __init__(self, input_size, hidden_size, dropout_p=0.1):
        super(EncoderRNN, self).__init__()
        self.hidden_size = hidden_size

        self.embedding = nn.Embedding(input_size, hidden_size)
        self.gru = nn.GRU(hidden_size, hidden_size, batch_first=True)
        self.dropout = nn.Dropout(dropout_p)

    def forward(self, input):
        embedded = self.dropout(self.embedding(input))
        output, hidden = self.gru(embedded)
        return output, hidden


class BahdanauAttention(nn.Module):
    def __init__(self, hidden_size):
        super(BahdanauAttention, self).__init__()
        self.Wa = nn.Linear(hidden_size, hidden_size)
        self.Ua = nn.Linear(hidden_size, hidden_size)
        self.Va = nn.Linear(hidden_size, 1)

    def forward(self, query, keys):
        scores = self.Va(torch.tanh(self.Wa(query) + self.Ua(keys)))
        scores = scores.squeeze(2).unsqueeze(1)

        weights = F.softmax(scores, dim=-1)
        context = torch.bmm(weights, keys)

        return context, weights


class AttnDecoderRNN(nn.Module):
    def __init__(self, hidden_size, output_size, dropout_p=0.1):
        super(AttnDecoderRNN, self).__init__()
        self.embedding = nn.Embedding(output_size, hidden_size)
        self.attention = BahdanauAttention(hidden_size)
        self.gru = nn.GRU(2 * hidden_size, hidden_size, batch_first=True)
        self.out = nn.Linear(hidden_size, output_size)
        self.dropout = nn.Dropout(dropout_p)

    def forward(self, encoder_outputs, encoder_hidden, target_tensor=None):
        batch_size = encoder_outputs.size(0)
        decoder_input = torch.empty(batch_size, 1, dtype=torch.long, device=device).fill_(SOS_token)
        decoder_hidden = encoder_hidden
        decoder_outputs = []
        attentions = []

        for i in range(MAX_LENGTH):
            decoder_output, decoder_hidden, attn_weights = self.forward_step(
                decoder_input, decoder_hidden, encoder_outputs
            )
            decoder_outputs.append(decoder_output)
            attentions.append(attn_weights)

            if target_tensor is not None:
                # Teacher forcing: Feed the target as the next input
                decoder_input = target_tensor[:, i].unsqueeze(1)  # Teacher forcing
            else:
                # Without teacher forcing: use its own predictions as the next input
                _, topi = decoder_output.topk(1)
                decoder_input = topi.squeeze(-1).detach()  # detach from history as input

        decoder_outputs = torch.cat(decoder_outputs, dim=1)
        decoder_outputs = F.log_softmax(decoder_outputs, dim=-1)
        attentions = torch.cat(attentions, dim=1)

        return decoder_outputs, decoder_hidden, attentions

    def forward_step(self, input, hidden, encoder_outputs):
        embedded = self.dropout(self.embedding(input))

        query = hidden.permute(1, 0, 2)
        context, attn_weights = self.attention(query, encoder_outputs)
        input_gru = torch.cat((embedded, context), dim=2)

        output, hidden = self.gru(input_gru, hidden)
        output = self.out(output)

        return output, hidden, attn_weights


def indexesFromSentence(lang, sentence):
    return [lang.word2index[word] for word in sentence.split(' ')]


def tensorFromSentence(lang, sentence):
    indexes = indexesFromSentence(lang, sentence)
    indexes.append(EOS_token)
    return torch.tensor(indexes, dtype=torch.long, device=device).view(1, -1)


def get_dataloader(batch_size):
    input_lang, output_lang, pairs = prepareData('eng', 'fra', True)

    n = len(pairs)
    input_ids = np.zeros((n, MAX_LENGTH), dtype=np.int32)
    target_ids = np.zeros((n, MAX_LENGTH), dtype=np.int32)

    for idx, (inp, tgt) in enumerate(pairs):
        inp_ids = indexesFromSentence(input_lang, inp)
        tgt_ids = indexesFromSentence(output_lang, tgt)
        inp_ids.append(EOS_token)
        tgt_ids.append(EOS_token)
        input_ids[idx, :len(inp_ids)] = inp_ids
        target_ids[idx, :len(tgt_ids)] = tgt_ids

    train_data = TensorDataset(torch.LongTensor(input_ids).to(device),
                               torch.LongTensor(target_ids).to(device))

    train_sampler = RandomSampler(train_data)
    train_dataloader = DataLoader(train_data, sampler=train_sampler, batch_size=batch_size)
    return input_lang, output_lang, train_dataloader, pairs  # the tutorial's global pairs


def train_epoch(dataloader, encoder, decoder, encoder_optimizer,
                decoder_optimizer, criterion):

    total_loss = 0
    for data in dataloader:
        input_tensor, target_tensor = data

        encoder_optimizer.zero_grad()
        decoder_optimizer.zero_grad()

        encoder_outputs, encoder_hidden = encoder(input_tensor)
        decoder_outputs, _, _ = decoder(encoder_outputs, encoder_hidden, target_tensor)

        loss = criterion(
            decoder_outputs.view(-1, decoder_outputs.size(-1)),
            target_tensor.view(-1)
        )
        loss.backward()

        encoder_optimizer.step()
        decoder_optimizer.step()

        total_loss += loss.item()

    return total_loss / len(dataloader)


def train(train_dataloader, encoder, decoder, n_epochs, learning_rate=0.001,
          print_every=100, plot_every=100):
    plot_losses = []
    print_loss_total = 0  # Reset every print_every
    plot_loss_total = 0  # Reset every plot_every

    encoder_optimizer = optim.Adam(encoder.parameters(), lr=learning_rate)
    decoder_optimizer = optim.Adam(decoder.parameters(), lr=learning_rate)
    criterion = nn.NLLLoss()

    for epoch in range(1, n_epochs + 1):
        loss = train_epoch(train_dataloader, encoder, decoder, encoder_optimizer, decoder_optimizer, criterion)
        print_loss_total += loss
        plot_loss_total += loss

        if epoch % print_every == 0:
            print_loss_avg = print_loss_total / print_every
            print_loss_total = 0
            print('(%d %d%%) %.4f' % (epoch, epoch / n_epochs * 100, print_loss_avg))

        if epoch % plot_every == 0:
            plot_loss_avg = plot_loss_total / plot_every
            plot_losses.append(plot_loss_avg)
            plot_loss_total = 0

    return plot_losses


def evaluate(encoder, decoder, sentence, input_lang, output_lang):
    with torch.no_grad():
        input_tensor = tensorFromSentence(input_lang, sentence)

        encoder_outputs, encoder_hidden = encoder(input_tensor)
        decoder_outputs, decoder_hidden, decoder_attn = decoder(encoder_outputs, encoder_hidden)

        _, topi = decoder_outputs.topk(1)
        decoded_ids = topi.squeeze()

        decoded_words = []
        for idx in decoded_ids:
            if idx.item() == EOS_token:
                decoded_words.append('<EOS>')
                break
            decoded_words.append(output_lang.index2word[idx.item()])
    return decoded_words, decoder_attn


evaluate.__test__ = False


# -- tests -----------------------------------------------------------------------------------
hidden_size = 32  # the tutorial: 128


def _setup(seed=0, batch_size=5):
    torch.manual_seed(seed)
    random.seed(seed)
    input_lang, output_lang, train_dataloader, pairs = get_dataloader(batch_size)
    encoder = EncoderRNN(input_lang.n_words, hidden_size).to(device)
    decoder = AttnDecoderRNN(hidden_size, output_lang.n_words).to(device)
    return input_lang, output_lang, train_dataloader, pairs, encoder, decoder


def test_data_preparation():
    input_lang, output_lang, loader, pairs, _, _ = _setup()
    assert len(pairs) == 25 and pairs[0] == ['je suis fatigue', 'i am tired']
    assert normalizeString("  Vous êtes en retard!") == "vous etes en retard !"
    assert output_lang.index2word[output_lang.word2index['tired']] == 'tired'
    assert output_lang.word2count['am'] == 5 and input_lang.n_words == 2 + 9 + 6
    batches = list(loader)
    assert len(loader) == 5 and [b[0].shape for b in batches] == [(5, MAX_LENGTH)] * 5
    assert batches[0][0].dtype == torch.int64
    ids = sorted(tuple(r) for b in batches for r in b[1].tolist())
    assert len(set(ids)) == 25  # RandomSampler: every pair once per epoch
    t = tensorFromSentence(output_lang, 'i am tired')
    assert t.shape == (1, 4) and t[0, -1].item() == EOS_token


def test_training_lowers_the_loss_and_translates(capsys):
    input_lang, output_lang, loader, pairs, encoder, decoder = _setup()
    plot_losses = train(loader, encoder, decoder, 25, learning_rate=0.01, print_every=5,
                        plot_every=5)
    assert plot_losses[-1] < 0.2 * plot_losses[0], plot_losses
    encoder.eval()
    decoder.eval()
    good = 0
    for pair in pairs:
        output_words, attn = evaluate(encoder, decoder, pair[0], input_lang, output_lang)
        good += ' '.join(output_words) == pair[1] + ' <EOS>'
    assert good >= 15, good  # 25 epochs of 5 batches; chance is ~0
    assert attn.shape == (1, MAX_LENGTH, len(pair[0].split()) + 1)
    np.testing.assert_allclose(attn.sum(-1).numpy(), 1.0, rtol=1e-5)
    assert '(25 100%)' in capsys.readouterr().out


def test_attention_matches_numpy():
    torch.manual_seed(0)
    att = BahdanauAttention(8)
    q, k = torch.randn(2, 1, 8), torch.randn(2, 5, 8)
    with torch.no_grad():
        ctx, w = att(q, k)
    p = {n: v.numpy().astype(np.float64) for n, v in att.state_dict().items()}
    qn, kn = q.numpy().astype(np.float64), k.numpy().astype(np.float64)
    e = np.tanh(qn @ p['Wa.weight'].T + p['Wa.bias'] + kn @ p['Ua.weight'].T + p['Ua.bias'])
    s = (e @ p['Va.weight'].T + p['Va.bias'])[..., 0][:, None, :]
    ww = np.exp(s - s.max(-1, keepdims=True))
    ww /= ww.sum(-1, keepdims=True)
    np.testing.assert_allclose(w.numpy(), ww, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ctx.numpy(), ww @ kn, rtol=1e-5, atol=1e-6)


def _run(compiled, steps=4):
    input_lang, output_lang, _, pairs, encoder, decoder = _setup()
    encoder_optimizer = optim.Adam(encoder.parameters(), lr=0.01)
    decoder_optimizer = optim.Adam(decoder.parameters(), lr=0.01)
    criterion = nn.NLLLoss()

    def step(input_tensor, target_tensor):
        # one iteration of train_epoch's loop body
        encoder_optimizer.zero_grad()
        decoder_optimizer.zero_grad()

        encoder_outputs, encoder_hidden = encoder(input_tensor)
        decoder_outputs, _, _ = decoder(encoder_outputs, encoder_hidden, target_tensor)

        loss = criterion(
            decoder_outputs.view(-1, decoder_outputs.size(-1)),
            target_tensor.view(-1)
        )
        loss.backward()

        encoder_optimizer.step()
        decoder_optimizer.step()
        return loss

    fn = torch.compile(step, mode="always") if compiled else step
    _, _, loader, _ = get_dataloader(5)
    loader = DataLoader(loader.dataset, sampler=RandomSampler(
        loader.dataset, generator=torch.Generator().manual_seed(3)), batch_size=5)
    losses = []
    torch.manual_seed(4)  # the dropout masks, the same for both runs
    for input_tensor, target_tensor in loader:
        losses.append(fn(input_tensor, target_tensor).item())
        if len(losses) == steps:
            break
    state = {f"e.{k}": v.numpy().copy() for k, v in encoder.state_dict().items()}
    state.update({f"d.{k}": v.numpy().copy() for k, v in decoder.state_dict().items()})
    return losses, state, fn


def test_compiled_train_step_matches_eager_and_compiles_once():
    l_eager, s_eager, _ = _run(False)
    l_comp, s_comp, fn = _run(True)
    np.testing.assert_allclose(l_comp, l_eager, rtol=1e-4, atol=1e-5)
    for k in s_eager:
        # Va.bias shifts every score equally: softmax makes its gradient 0 up to rounding
        # (~1e-10), and Adam scales that noise up to lr-sized steps of either sign
        tol = dict(atol=4 * 0.01 * 2) if k == "d.attention.Va.bias" else dict(rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(s_comp[k], s_eager[k], err_msg=k, **tol)
    assert_stats(fn, eager_reason=None, captures=1, num_recompiles=0)


def test_gradcheck_through_attention_decoder_float64():
    global MAX_LENGTH
    torch.manual_seed(0)
    decoder = AttnDecoderRNN(4, 6).double().eval()
    enc_out = torch.randn(2, 3, 4, dtype=torch.float64)
    enc_hidden = torch.randn(1, 2, 4, dtype=torch.float64, requires_grad=True)
    target = torch.tensor([[2, 3, 1, 0, 0, 0], [4, 1, 0, 0, 0, 0]])
    w = decoder.attention.Wa.weight.detach().clone().requires_grad_()
    MAX_LENGTH, saved = 3, MAX_LENGTH
    try:
        def loss_of(w_a, keys, h):
            out, _, _ = fw.func.functional_call(decoder, {'attention.Wa.weight': w_a},
                                                (keys, h, target))
            return nn.NLLLoss()(out.reshape(-1, 6), target[:, :3].reshape(-1))
        assert fw.autograd.gradcheck(loss_of, (w, enc_out.requires_grad_(), enc_hidden),
                                     eps=1e-6, atol=1e-6)
    finally:
        MAX_LENGTH = saved


def test_onnx_export_of_greedy_decoding(tmp_path):
    """The eval-mode encoder + decoder (greedy topk decoding, no target) as one graph."""
    ort = pytest.importorskip("onnxruntime")
    input_lang, output_lang, _, pairs, encoder, decoder = _setup()
    encoder.eval()
    decoder.eval()

    class Translate(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder, self.decoder = encoder, decoder

        def forward(self, input_tensor):
            encoder_outputs, encoder_hidden = self.encoder(input_tensor)
            return self.decoder(encoder_outputs, encoder_hidden)[0]

    model = Translate()
    x = tensorFromSentence(input_lang, pairs[3][0])
    path = str(tmp_path / "seq2seq.onnx")
    fw.onnx.export(model, (x,), path, input_names=["ids"], output_names=["logp"])
    got = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(
        None, {"ids": x.numpy()})[0]
    with torch.no_grad():
        want = model(x).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
