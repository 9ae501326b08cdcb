"""pytorch/tutorials ``beginner_source/chatbot_tutorial.py`` ported to fw (the code is in
``_chatbot_model.py``).

Changes beyond ``torch`` -> ``fw``: the Cornell Movie-Dialogs corpus becomes a few dozen
synthetic lines written in its ``+++$+++`` file format; sizes shrink (hidden 16, batch 4,
60 iterations) and the learning rate rises from 1e-4 to 5e-3 so the toy run learns in
seconds; ``evaluateInput`` takes ``input`` as a parameter and returns its replies; the
optimizer-state ``.cuda()`` loop runs only when ``USE_CUDA`` (the tutorial runs it
unconditionally, which is a no-op before training but fails after loading a checkpoint on a
machine without CUDA, in PyTorch as in fw). This version of the tutorial imports
``torch.jit.script``/``trace`` without using them (the TorchScript chatbot is a separate
tutorial): they import from ``fw.jit``.
"""

import os
import random

import numpy as np
import pytest

import framework as torch
import framework.nn as nn
from framework import optim

from . import _chatbot_model as cb
from ._checks import assert_onnx_export_matches, grad_leaves

DIALOGUES = [("Hello?", "Hello."), ("How are you doing?", "I'm fine."),
             ("Where are you from?", "San Francisco."), ("Who are you?", "I'm a lawyer."),
             ("Are you my friend?", "No."), ("Goodbye!", "Goodbye.")]
# one long exchange (filtered by MAX_LENGTH) and one with a rare word (trimmed by MIN_COUNT)
EXTRA = [("This line has far too many words to pass the length filter at all.", "Yes."),
         ("Where is Zanzibar?", "San Francisco.")]
corpus_name = "cornell movie-dialogs corpus"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """movie_lines.txt and movie_conversations.txt in the Cornell format."""
    path = tmp_path_factory.mktemp("data") / corpus_name
    path.mkdir()
    lines, convs, n = [], [], 100
    for rep in range(4):
        for q, a in DIALOGUES + EXTRA * (rep == 0):
            ids = [f"L{n}", f"L{n + 1}"]
            lines += [f"{ids[0]} +++$+++ u0 +++$+++ m0 +++$+++ BIANCA +++$+++ {q}\n",
                      f"{ids[1]} +++$+++ u2 +++$+++ m0 +++$+++ CAMERON +++$+++ {a}\n"]
            convs.append(f"u0 +++$+++ u2 +++$+++ m0 +++$+++ {ids}\n")
            n += 2
    (path / "movie_lines.txt").write_text("".join(lines[::-1]), encoding="iso-8859-1")
    (path / "movie_conversations.txt").write_text("".join(convs), encoding="iso-8859-1")
    datafile = os.path.join(path, "formatted_movie_lines.txt")
    cb.write_formatted_file(str(path), datafile)
    voc, pairs = cb.loadPrepareData(str(path), corpus_name, datafile, None)
    pairs = cb.trimRareWords(voc, pairs, cb.MIN_COUNT)
    return voc, pairs


def build(voc, attn_model='dot', dropout=0.1, n_layers=2, seed=0, lr=5e-3):
    """The tutorial's "Run Model" and optimizer blocks (also sets the global decoder)."""
    torch.manual_seed(seed)
    embedding = nn.Embedding(voc.num_words, cb.hidden_size)
    encoder = cb.EncoderRNN(cb.hidden_size, embedding, n_layers, dropout)
    decoder = cb.LuongAttnDecoderRNN(attn_model, embedding, cb.hidden_size, voc.num_words,
                                     n_layers, dropout)
    if attn_model == 'concat':
        nn.init.normal_(decoder.attn.v)  # torch.FloatTensor(n) is uninitialized memory
    encoder = encoder.to(cb.device)
    decoder = decoder.to(cb.device)
    cb.decoder = decoder
    encoder.train()
    decoder.train()
    encoder_optimizer = optim.Adam(encoder.parameters(), lr=lr)
    decoder_optimizer = optim.Adam(decoder.parameters(), lr=lr * 5.0)
    return embedding, encoder, decoder, encoder_optimizer, decoder_optimizer


def run_train_iters(voc, pairs, models, n_iteration, save_dir="unused", save_every=10**9,
                    loadFilename=None, clip=50.0):
    embedding, encoder, decoder, eopt, dopt = models
    losses = []
    cb.trainIters('cb_model', voc, pairs, encoder, decoder, eopt, dopt, embedding, 2, 2,
                  save_dir, n_iteration, 4, 20, save_every, clip, corpus_name, loadFilename,
                  losses=losses)
    return losses


# ================================================================ tests ====================
def test_data_preparation(corpus):
    voc, pairs = corpus
    assert cb.normalizeString("I'm  Fine!  Ça va?") == "i m fine ! ca va ?"
    # 6 dialogues x 4, the long one filtered, the Zanzibar one trimmed with its rare word
    assert len(pairs) == 24 and ["hello ?", "hello ."] in pairs
    assert "zanzibar" not in voc.word2index and voc.trimmed
    assert voc.num_words == 3 + len({w for p in pairs for s in p for w in s.split()})


def test_batch2TrainData_shapes_mask_and_lengths(corpus):
    voc, pairs = corpus
    batch = [["how are you doing ?", "i m fine ."], ["hello ?", "hello ."],
             ["who are you ?", "i m a lawyer ."]]
    inp, lengths, output, mask, max_target_len = cb.batch2TrainData(voc, batch)
    assert inp.dtype == torch.int64 and inp.shape == (6, 3)            # (max_len, batch)
    assert lengths.tolist() == [6, 5, 3]                                # sorted, with EOS
    assert inp[:, 2].tolist() == [voc.word2index["hello"], voc.word2index["?"],
                                  cb.EOS_token, 0, 0, 0]
    assert mask.dtype == torch.bool and mask.shape == output.shape == (6, 3)
    assert max_target_len == 6 and mask.sum().item() == 5 + 6 + 3
    np.testing.assert_array_equal(mask.numpy(), output.numpy() != cb.PAD_token)


def test_encoder_packs_padding_and_attention_scores(corpus):
    voc, pairs = corpus
    embedding, encoder, decoder, _, _ = build(voc, 'general', dropout=0.0)
    inp, lengths, *_ = cb.batch2TrainData(voc, [random.Random(i).choice(pairs)
                                                for i in range(4)])
    outputs, hidden = encoder(inp, lengths)
    assert outputs.shape == (inp.shape[0], 4, cb.hidden_size) and hidden.shape == (4, 4, 16)
    for b, n in enumerate(lengths.tolist()):  # padded steps are zero (both directions)
        assert np.all(outputs[n:, b].detach().numpy() == 0)
        # the sequence alone, unpadded, gives the same outputs: packing hides the padding
        alone, h_alone = encoder(inp[:n, b:b + 1], torch.tensor([n]))
        np.testing.assert_allclose(alone[:, 0].detach().numpy(),
                                   outputs[:n, b].detach().numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(h_alone[:, 0].detach().numpy(),
                                   hidden[:, b].detach().numpy(), rtol=1e-5, atol=1e-6)
    # Luong scores against NumPy: general = h . (W e + b), softmax over the source positions
    h = torch.randn(1, 4, 16)
    w = decoder.attn.attn.weight.detach().numpy()
    bvec = decoder.attn.attn.bias.detach().numpy()
    enc = outputs.detach().numpy()
    energy = ((enc @ w.T + bvec) * h.numpy()).sum(2).T
    want = np.exp(energy - energy.max(1, keepdims=True))
    want /= want.sum(1, keepdims=True)
    got = decoder.attn(h, outputs).detach().numpy()
    assert got.shape == (4, 1, inp.shape[0])
    np.testing.assert_allclose(got[:, 0], want, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="not an appropriate attention method"):
        cb.Attn('cosine', 4)


def test_maskNLLLoss_matches_numpy():
    inp = torch.softmax(torch.randn(5, 7), 1)
    target = torch.tensor([1, 0, 6, 2, 2])
    mask = torch.tensor([True, True, False, True, False])
    loss, n = cb.maskNLLLoss(inp, target, mask)
    p = inp.numpy()[np.arange(5), target.numpy()]
    assert n == 3
    np.testing.assert_allclose(loss.item(), -np.log(p[mask.numpy()]).mean(), rtol=1e-6)


@pytest.mark.parametrize("attn_model,tf_ratio,iters", [('dot', 1.0, 100),
                                                       ('general', 0.5, 60),
                                                       ('concat', 0.0, 60)])
def test_training_lowers_loss_and_bot_answers(corpus, attn_model, tf_ratio, iters,
                                              monkeypatch):
    voc, pairs = corpus
    random.seed(0)
    monkeypatch.setattr(cb, "teacher_forcing_ratio", tf_ratio)
    models = build(voc, attn_model)
    losses = run_train_iters(voc, pairs, models, iters)
    assert np.mean(losses[-5:]) < 0.4 * np.mean(losses[:5]), losses
    _, encoder, decoder, _, _ = models
    encoder.eval()
    decoder.eval()
    searcher = cb.GreedySearchDecoder(encoder, decoder)
    lines = iter([q for q, _ in DIALOGUES] + ["Where is Zanzibar?", "q"])
    replies = cb.evaluateInput(encoder, decoder, searcher, voc, input=lambda _: next(lines))
    assert len(replies) == 7 and replies[6] is None   # "Error: Encountered unknown word."
    if attn_model == 'dot':  # trained long enough to answer every line
        assert replies[:6] == [cb.normalizeString(a) for _, a in DIALOGUES], replies


def test_greedy_search_decoder_tokens_and_scores(corpus):
    voc, pairs = corpus
    _, encoder, decoder, _, _ = build(voc, dropout=0.0)
    encoder.eval()
    decoder.eval()
    searcher = cb.GreedySearchDecoder(encoder, decoder)
    inp = torch.LongTensor([cb.indexesFromSentence(voc, "hello ?")]).transpose(0, 1)
    tokens, scores = searcher(inp, torch.tensor([3]), 5)
    assert tokens.dtype == torch.int64 and tokens.shape == (5,) and scores.shape == (5,)
    # replay the greedy loop by hand: each token is the argmax of its step's softmax
    with torch.no_grad():
        enc_out, enc_hidden = encoder(inp, torch.tensor([3]))
        hidden, x = enc_hidden[:decoder.n_layers], torch.tensor([[cb.SOS_token]])
        for t in range(5):
            out, hidden = decoder(x, hidden, enc_out)
            assert tokens[t].item() == out.argmax().item()
            np.testing.assert_allclose(scores[t].item(), out.max().item(), rtol=1e-6)
            x = tokens[t].view(1, 1)


def test_checkpoint_resume_matches_uninterrupted_run(corpus, tmp_path):
    voc, pairs = corpus
    random.seed(1)
    full = build(voc, dropout=0.0)
    want = run_train_iters(voc, pairs, full, 8)
    random.seed(1)
    first = build(voc, dropout=0.0)
    run_train_iters(voc, pairs, first, 8, save_dir=str(tmp_path), save_every=4)
    path = os.path.join(tmp_path, 'cb_model', corpus_name, '2-2_16', '4_checkpoint.tar')
    assert os.path.exists(path)

    # "Load model if a loadFilename is provided"
    checkpoint = torch.load(path)
    assert checkpoint['iteration'] == 4 and isinstance(checkpoint['loss'], float)
    voc2 = cb.Voc(corpus_name)
    voc2.__dict__ = checkpoint['voc_dict']
    assert voc2.word2index == voc.word2index and voc2.index2word == voc.index2word
    embedding, encoder, decoder, eopt, dopt = build(voc2, dropout=0.0, seed=5)
    embedding.load_state_dict(checkpoint['embedding'])
    encoder.load_state_dict(checkpoint['en'])
    decoder.load_state_dict(checkpoint['de'])
    eopt.load_state_dict(checkpoint['en_opt'])
    dopt.load_state_dict(checkpoint['de_opt'])
    assert encoder.embedding is embedding and decoder.embedding is embedding
    if cb.USE_CUDA:
        for state in eopt.state.values():
            for k, v in state.items():
                if isinstance(v, torch.Tensor):
                    state[k] = v.cuda()
    random.seed(1)
    cb.checkpoint = checkpoint
    try:
        resumed = run_train_iters(voc2, pairs, (embedding, encoder, decoder, eopt, dopt), 8,
                                  loadFilename=path)
    finally:
        cb.checkpoint = None
    np.testing.assert_allclose(resumed, want[4:], rtol=1e-5, atol=1e-6)
    for (n, p), q in zip(full[1].named_parameters(), encoder.parameters()):
        np.testing.assert_allclose(q.detach().numpy(), p.detach().numpy(), rtol=1e-5,
                                   atol=1e-6, err_msg=n)


@pytest.mark.filterwarnings("ignore:fw.compile.EncoderRNN.. graph break")
def test_compiled_encoder_and_decoder_match_eager(corpus):
    # train() itself reads .item() every step (a graph break), so the compiled units are
    # the two modules, called by the unchanged train() under eager autograd
    voc, pairs = corpus
    runs = []
    for compiled in (False, True):
        random.seed(2)
        embedding, encoder, decoder, eopt, dopt = build(voc, 'concat')
        if compiled:
            encoder, decoder = torch.compile(encoder), torch.compile(decoder, mode="always")
            cb.decoder = decoder
        losses = run_train_iters(voc, pairs, (embedding, encoder, decoder, eopt, dopt), 6)
        runs.append((losses, encoder, decoder))
    (l_e, enc_e, dec_e), (l_c, enc_c, dec_c) = runs
    np.testing.assert_allclose(l_c, l_e, rtol=1e-4, atol=1e-5)
    for a, b in ((enc_e, enc_c), (dec_e, dec_c)):
        for (n, p), q in zip(a.named_parameters(), b.parameters()):
            np.testing.assert_allclose(q.detach().numpy(), p.detach().numpy(), rtol=1e-4,
                                       atol=1e-5, err_msg=n)
    st = dec_c.stats()
    assert not st["graph_breaks"] and st["eager_calls"] == 0, st
    assert st["cache_hits"] > 3 * st["captures"], st
    # the encoder's pack_padded_sequence reads the lengths on the host: a graph break, so
    # it runs eagerly (as PyTorch's dynamo falls back on RNNs over packed sequences)
    st = enc_c.stats()
    assert st["graph_breaks"] and "tolist" in st["graph_breaks"][0], st


def test_gradcheck_tiny_float64_encoder_decoder(corpus):
    voc, _ = corpus
    torch.manual_seed(0)
    emb = nn.Embedding(7, 3).double()
    enc = cb.EncoderRNN(3, emb, 1, 0).double()
    dec = cb.LuongAttnDecoderRNN('concat', emb, 3, 7, 1, 0.0).double()
    nn.init.normal_(dec.attn.v)
    inp, lengths = torch.tensor([[1, 2], [3, 4], [5, 0]]), torch.tensor([3, 2])
    names = [("e", n) for n, _ in enc.named_parameters()] + \
        [("d", n) for n, _ in dec.named_parameters() if not n.startswith("embedding")]
    leaves = grad_leaves(*([p for _, p in enc.named_parameters()] +
                           [p for n, p in dec.named_parameters()
                            if not n.startswith("embedding")]))

    def f(*params):
        pe = {n: p for (w, n), p in zip(names, params) if w == "e"}
        pd = {n: p for (w, n), p in zip(names, params) if w == "d"}
        pd["embedding.weight"] = pe["embedding.weight"]
        out, hidden = torch.func.functional_call(enc, pe, (inp, lengths))
        x, total = torch.tensor([[cb.SOS_token, cb.SOS_token]]), 0
        for t in range(2):
            y, hidden = torch.func.functional_call(dec, pd, (x, hidden[:1], out))
            total = total + torch.log(y[:, t + 1]).sum()
            x = inp[t].view(1, -1)
        return total

    assert torch.autograd.gradcheck(f, leaves, eps=1e-6, atol=1e-5)


def test_onnx_export_of_decoder_step(corpus, tmp_path):
    voc, _ = corpus
    _, encoder, decoder, _, _ = build(voc, 'general')
    decoder.eval()
    x = torch.LongTensor([[cb.SOS_token] * 3])
    args = (x, torch.randn(2, 3, cb.hidden_size), torch.randn(5, 3, cb.hidden_size))
    assert_onnx_export_matches(decoder, args, tmp_path / "decoder.onnx")
