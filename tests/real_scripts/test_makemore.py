# ruff: noqa: E501
"""Tests of the makemore port (tests/real_scripts/_makemore.py): every model type trains,
its compiled step equals eager, its forward exports to ONNX; the dataset, the infinite
loader, evaluate, print_samples / generate and the --resume / --sample-only path."""

import os
from types import SimpleNamespace

import numpy as np
import pytest

import framework as fw
import framework.nn as nn

from . import _makemore as mm
from ._checks import assert_params_close, assert_stats, grad_leaves
from ._makemore import (MLP, RNN, BoW, Bigram, CausalBoW, InfiniteDataLoader, ModelConfig,
                        Transformer, create_datasets, evaluate, generate, main)

torch = fw


NAMES = """emma olivia ava isabella sophia mia charlotte amelia harper evelyn abigail emily
ella elizabeth camila luna sofia avery mila aria scarlett penelope layla chloe victoria
madison eleanor grace nora riley zoey hannah hazel lily ellie violet lillian zoe stella
aurora natalie emilia everly leah aubrey willow addison lucy audrey bella nova brooklyn
paisley savannah claire skylar isla genesis naomi elena caroline eliana anna maya valentina
ruby kennedy ivy ariana aaliyah cora madelyn alice kinsley hailey gabriella allison gianna
serenity samantha sarah autumn quinn eva piper sophie sadie delilah josephine nevaeh adeline""".split()
MODEL_TYPES = ['bigram', 'mlp', 'rnn', 'gru', 'bow', 'transformer']


def _args(tmp_path, type, **kw):
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "names.txt"
    path.write_text("\n".join(NAMES) + "\n")
    a = dict(input_file=str(path), work_dir=str(tmp_path / "out"), resume=False,
             sample_only=False, num_workers=0, max_steps=6, device='cpu', seed=3407,
             top_k=-1, type=type, n_layer=2, n_head=2, n_embd=16, n_embd2=16,
             batch_size=16, learning_rate=1e-2, weight_decay=0.01,
             eval_every=500, sample_every=200, compile=False)  # the script's 500 / 200
    a.update(kw)
    return SimpleNamespace(**a)


def test_char_dataset_encoding_and_masking(tmp_path):
    torch.manual_seed(0)
    tr, te = create_datasets(_args(tmp_path, 'bigram').input_file)
    assert len(tr) + len(te) == len(NAMES) and len(te) == int(len(NAMES) * 0.1)
    assert sorted(tr.words + te.words) == sorted(NAMES)
    assert tr.get_vocab_size() == len(set("".join(NAMES))) + 1
    T = max(len(w) for w in NAMES) + 1
    i = tr.words.index(next(w for w in tr.words if len(w) < T - 2))
    x, y = tr[i]
    w = tr.words[i]
    assert x.dtype == fw.int64 and x.shape == (T,) and y.shape == (T,)
    assert x[0].item() == 0 and tr.decode(x[1:1 + len(w)].tolist()) == w
    assert tr.decode(y[:len(w)].tolist()) == w and y[len(w)].item() == 0
    assert (y[len(w) + 1:] == -1).all().item()


def test_infinite_loader_samples_with_replacement(tmp_path):
    torch.manual_seed(0)
    tr, _ = create_datasets(_args(tmp_path, 'bigram').input_file)
    loader = InfiniteDataLoader(tr, batch_size=len(tr), num_workers=0)
    X, Y = loader.next()
    assert X.shape == (len(tr), tr.get_output_length())
    assert len(loader.train_loader.sampler) == int(1e10)
    # with replacement: a full-size batch of distinct words repeats some with high probability
    rows = {tuple(r) for r in X.tolist()}
    assert len(rows) < len(tr)


@pytest.mark.parametrize("type", MODEL_TYPES)
def test_each_model_trains_and_eval_loss_drops(tmp_path, type):
    # lr 0 and no weight decay: one AdamW step leaves the seeded initial model unchanged
    fresh, _ = main(_args(tmp_path / "f", type, max_steps=1, learning_rate=0.0, weight_decay=0.0))
    torch.manual_seed(1)
    before = evaluate(fresh, mm.train_dataset, batch_size=100, max_batches=10)
    model, losses = main(_args(tmp_path / "t", type, max_steps=8, learning_rate=3e-2))
    torch.manual_seed(1)
    after = evaluate(model, mm.train_dataset, batch_size=100, max_batches=10)
    assert after < before - 0.1, (type, before, after, losses)
    assert losses[-1] < losses[0], (type, losses)
    assert model.training  # evaluate() switches back to train mode


@pytest.mark.parametrize("type", MODEL_TYPES)
def test_compiled_step_matches_eager(tmp_path, type):
    eager, eager_losses = main(_args(tmp_path / "e", type))
    comp, comp_losses = main(_args(tmp_path / "c", type, compile=True))
    np.testing.assert_allclose(comp_losses, eager_losses, rtol=1e-4, atol=1e-5)
    assert_params_close(comp, eager)
    assert_stats(main.step_fn, captures=1, num_recompiles=0, eager_reason=None)


@pytest.mark.parametrize("type", MODEL_TYPES)
def test_onnx_export_of_each_model(tmp_path, type):
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    tr, _ = create_datasets(_args(tmp_path, type).input_file)
    config = ModelConfig(vocab_size=tr.get_vocab_size(), block_size=tr.get_output_length(),
                         n_layer=2, n_head=2, n_embd=16, n_embd2=16)
    model = {'transformer': Transformer, 'bigram': Bigram, 'mlp': MLP, 'bow': BoW,
             'rnn': lambda c: RNN(c, cell_type='rnn'),
             'gru': lambda c: RNN(c, cell_type='gru')}[type](config)
    if type == 'bigram':
        nn.init.normal_(model.logits)
    model.eval()
    X = torch.stack([tr[i][0] for i in range(4)])
    path = str(tmp_path / f"{type}.onnx")
    fw.onnx.export(model, (X,), path, input_names=["idx"], output_names=["logits"],
                   dynamic_axes={"idx": {0: "batch"}, "logits": {0: "batch"}})
    X2 = torch.stack([tr[i][0] for i in range(4, 9)])
    (got,) = ort.InferenceSession(path).run(["logits"], {"idx": X2.numpy()})
    with torch.no_grad():
        want, _ = model(X2)
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-5)


def test_generate_print_samples_and_resume(tmp_path, capsys):
    """The periodic evaluate + save and print_samples run inside the loop; then the script's
    --sample-only path reloads model.pt and samples with top-k."""
    args = _args(tmp_path, 'transformer', max_steps=4, eval_every=2, sample_every=3)
    model, _ = main(args)
    out = capsys.readouterr().out
    assert "is the best so far, saving model to" in out and "samples that are new:" in out
    saved = torch.load(os.path.join(args.work_dir, 'model.pt'))
    assert set(saved) == set(model.state_dict())
    args.sample_only, args.top_k = True, 3
    resumed, _ = main(args)
    for k, v in resumed.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), saved[k].numpy(), err_msg=k)
    out = capsys.readouterr().out
    assert out.count("samples that are") == 3
    # top-k sampling only ever picks one of the k most likely tokens; greedy is the argmax
    X_init = torch.zeros(6, 1, dtype=torch.long)
    torch.manual_seed(0)
    X = generate(resumed, X_init, 5, top_k=3, do_sample=True)
    assert X.shape == (6, 6) and X.dtype == torch.long
    with torch.no_grad():
        for t in range(1, 6):
            logits, _ = resumed(X[:, :t])
            top3 = torch.topk(logits[:, -1, :], 3).indices.tolist()
            for r in range(6):
                assert X[r, t].item() in top3[r]
    G = generate(resumed, X_init, 3, do_sample=False)
    with torch.no_grad():
        logits, _ = resumed(G[:, :3])
    np.testing.assert_array_equal(G[:, 3].numpy(), logits[:, -1, :].argmax(-1).numpy())


@pytest.mark.parametrize("type", ['gru', 'bow'])
def test_gradcheck_float64(type):
    """The loss of the GRU recurrence and of the -inf-masked causal BoW against finite
    differences, with respect to every parameter of a tiny float64 model."""
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=5, block_size=4, n_embd=3, n_embd2=3)
    model = (RNN(config, cell_type='gru') if type == 'gru' else BoW(config)).double()
    X = torch.randint(0, 5, (2, 4))
    Y = torch.randint(0, 5, (2, 4))
    Y[0, 3] = -1  # a masked target
    names, params = zip(*model.named_parameters())

    def f(*ps):
        out, _ = fw.func.functional_call(model, dict(zip(names, ps)), (X, Y))
        return _
    ps = grad_leaves(*params)
    assert fw.autograd.gradcheck(f, ps, eps=1e-6, atol=1e-5)


def test_forward_against_numpy(tmp_path):
    """The MLP's rolled <BLANK>-padded context, the causal BoW average and cross_entropy's
    ignore_index=-1 mean, recomputed in NumPy."""
    torch.manual_seed(0)
    tr, _ = create_datasets(_args(tmp_path, 'mlp').input_file)
    config = ModelConfig(vocab_size=tr.get_vocab_size(), block_size=tr.get_output_length(),
                         n_embd=4, n_embd2=8)
    X, Y = (torch.stack(t) for t in zip(*[tr[i] for i in range(3)]))
    x, y = X.numpy(), Y.numpy()
    B, T = x.shape
    mlp = MLP(config)
    logits, loss = mlp(X, Y)
    assert (X.numpy() == x).all()  # forward's in-place writes hit a rolled copy only
    wte = mlp.wte.weight.detach().numpy()
    ctx = []
    for k in range(config.block_size):
        shifted = np.full_like(x, config.vocab_size)
        shifted[:, k:] = x[:, :T - k]
        ctx.append(wte[shifted])
    h = np.tanh(np.concatenate(ctx, -1) @ mlp.mlp[0].weight.detach().numpy().T + mlp.mlp[0].bias.detach().numpy())
    want = h @ mlp.mlp[2].weight.detach().numpy().T + mlp.mlp[2].bias.detach().numpy()
    np.testing.assert_allclose(logits.detach().numpy(), want, rtol=1e-4, atol=1e-5)
    lz = want - want.max(-1, keepdims=True)
    logp = lz - np.log(np.exp(lz).sum(-1, keepdims=True))
    keep = y != -1
    nll = -logp[np.nonzero(keep)[0], np.nonzero(keep)[1], y[keep]]
    np.testing.assert_allclose(loss.item(), nll.mean(), rtol=1e-5)
    cbow = CausalBoW(config)
    v = torch.randn(2, 5, 3)
    avg = np.cumsum(v.numpy(), 1) / np.arange(1, 6)[None, :, None]
    np.testing.assert_allclose(cbow(v).numpy(), avg, rtol=1e-5, atol=1e-6)
