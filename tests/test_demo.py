"""``python -m framework.demo`` in a quick mode, and its parts (corpus, model, sampling)."""

import json

import numpy as np
import pytest

import framework as fw
from framework.demo.__main__ import main, parse_args
from framework.demo.corpus import load_corpus
from framework.demo.model import GPT, GPTConfig
from framework.demo.report import FIGURES
from framework.demo.sampling import generate

QUICK = ["--steps", "20", "--n-layer", "1", "--n-embd", "32", "--n-head", "2",
         "--block-size", "32", "--batch-size", "8", "--max-chars", "60000",
         "--eval-every", "10", "--sample-chars", "40", "--no-progress",
         "--blas-threads", "0"]  # leave the test process's BLAS settings alone


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    fig = main(QUICK + ["--out", str(out)])
    return out, fig


def test_quick_demo_writes_every_figure(quick_run):
    out, fig = quick_run
    saved = json.loads((out / "figures.json").read_text())
    assert set(FIGURES) <= set(saved)
    for key in ("eager_step_s", "compiled_step_s", "speedup", "first_compile_s",
                "kernels_per_compiled_step", "ops_per_eager_step",
                "kernel_calls_per_compiled_step", "peak_mem_eager_bytes",
                "peak_mem_compiled_bytes", "final_train_loss", "final_val_loss"):
        assert saved[key] is not None and saved[key] > 0, key
    assert saved["speedup"] == pytest.approx(saved["eager_step_s"] / saved["compiled_step_s"])
    # 4 eager steps, the first compiled call, 6 alternating pairs, then compiled steps
    assert len(saved["losses"]) == 20 and saved["phases"][:5] == ["eager"] * 4 + ["compiled"]
    assert saved["ab_window"] == [5, 17]
    assert saved["phases"][5:17] == ["compiled", "eager"] * 6
    assert saved["phases"][17:] == ["compiled"] * 3
    assert saved["untimed"] == [2, 3, 18, 19]  # profiled and memory-tracked steps
    st = saved["compile_stats"]
    assert st["captures"] == 1 and st["num_recompiles"] == 0 and st["eager_reason"] is None
    assert st["eager_calls"] == 0          # every compiled-phase step ran generated code
    # the step is one fused program: far fewer kernels than the ops eager dispatches
    assert saved["kernels_per_compiled_step"] < saved["ops_per_eager_step"]
    assert saved["kernels_per_compiled_step"] <= saved["kernel_calls_per_compiled_step"]
    assert [e[0] for e in saved["evals"]] == [10, 20]
    assert saved["losses"][-1] < saved["losses"][0]
    if saved["plot"].startswith("skipped"):
        assert "matplotlib" in saved["plot"]
    else:
        assert (out / "loss.png").stat().st_size > 1000


def test_checkpoint_and_onnx_agree(quick_run):
    ort = pytest.importorskip("onnxruntime")
    out, fig = quick_run
    assert fig["checkpoint"]["identical"] and fig["checkpoint"]["vocab_roundtrip"]
    assert fig["onnx"]["matches"] and fig["onnx"]["input_shape"] == ["batch", "seq"]
    # Independently: the checkpoint's model and the ONNX file give the same logits, for a
    # batch and a sequence length other than the export example's.
    ck = fw.load(out / "checkpoint.safetensors")
    model = GPT(GPTConfig(**ck["config"])).eval()
    model.load_state_dict(ck["model"])
    ids = np.random.default_rng(0).integers(0, len(ck["chars"]), (5, 23))
    with fw.no_grad():
        ref = model(fw.tensor(ids)).numpy()
    session = ort.InferenceSession(str(out / "model.onnx"))
    got = session.run(None, {"idx": ids})[0]
    assert got.shape == (5, 23, len(ck["chars"]))
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)
    smp = fig["samples"]
    assert smp["eager"].startswith(smp["prompt"]) and len(smp["eager"]) == \
        len(smp["prompt"]) + 40
    assert smp["same_text"] == (smp["onnx"] == smp["eager"])


def test_no_compile_run_and_bad_arguments(tmp_path):
    fig = main(["--steps", "6"] + QUICK[2:] + ["--no-compile", "--out", str(tmp_path)])
    assert fig["compiled_step_s"] is None and fig["speedup"] is None
    assert fig["phases"] == ["eager"] * 6 and fig["compile_stats"] is None
    with pytest.raises(fw.ArgumentError, match="compiled steps"):
        main(["--steps", "6", "--eager-steps", "5", "--out", str(tmp_path)])
    with pytest.raises(fw.ArgumentError, match="--steps"):
        main(["--steps", "2", "--out", str(tmp_path)])


@pytest.mark.slow
def test_default_run_learns_well_below_the_unigram_baseline(tmp_path):
    """The full ``make demo`` configuration (about 40 s on a 2-core CPU)."""
    fig = main(["--out", str(tmp_path), "--no-progress"])
    assert fig["final_val_loss"] < fig["unigram_loss"] - 0.8, (fig["final_val_loss"],
                                                               fig["unigram_loss"])
    assert fig["onnx"]["matches"] and fig["checkpoint"]["identical"]


def test_cuda_without_a_device_is_a_clear_error(tmp_path):
    if fw.cuda.is_available():
        pytest.skip("a CUDA device (or the simulated one) is available")
    with pytest.raises(fw.DeviceError, match="--device cuda"):
        main(QUICK + ["--device", "cuda", "--out", str(tmp_path)])


@pytest.mark.slow
def test_tiny_run_on_the_simulated_cuda_device(tmp_path):
    """--device cuda end to end, on the interpreter-backed device (about a minute)."""
    import os
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "FW_TRITON_INTERPRET": "1", "TRITON_INTERPRET": "1",
           "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    args = ["--device", "cuda", "--steps", "8", "--eager-steps", "4", "--n-layer", "1",
            "--n-embd", "16", "--n-head", "2", "--block-size", "8", "--batch-size", "2",
            "--max-chars", "20000", "--eval-every", "4", "--sample-chars", "5",
            "--no-progress", "--blas-threads", "0", "--out", str(tmp_path)]
    proc = subprocess.run([sys.executable, "-m", "framework.demo", *args], env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    fig = json.loads((tmp_path / "figures.json").read_text())
    assert fig["device"] == "cuda:0" and fig["peak_mem_kind"].startswith("cuda")
    assert fig["checkpoint"]["identical"] and fig["onnx"]["matches"]


def test_blas_thread_limit():
    from framework.demo.blas import set_blas_threads
    lib = set_blas_threads(2)
    assert lib is None or "blas" in lib.lower()


def test_default_configuration():
    cfg, out, n = parse_args([])
    assert (cfg.steps, cfg.eager_steps, cfg.compile, cfg.device) == (800, 80, True, "cpu")
    assert str(out) == "demo_out" and 2 <= cfg.n_layer <= 4


def test_corpus_is_the_framework_source_and_split_is_deterministic():
    a, b = load_corpus(max_chars=50000), load_corpus(max_chars=50000)
    assert np.array_equal(a.train, b.train) and np.array_equal(a.val, b.val)
    assert len(a.val) == 5000 and len(a.train) == 45000
    text = a.decode(a.train[:200])
    assert text.startswith("# file: ") and ".py" in text.splitlines()[0]
    assert a.decode(a.encode("def f(x):\n")) == "def f(x):\n"
    with pytest.raises(fw.ArgumentError, match="vocabulary"):
        a.encode("\u00e9")
    x, y = a.batch("val", 4, 16, np.random.default_rng(0))
    assert x.shape == y.shape == (4, 16) and np.array_equal(x[:, 1:], y[:, :-1])
    # the unigram baseline is the entropy-like loss of character frequencies
    p = np.bincount(a.train, minlength=a.vocab_size) + 1.0
    p /= p.sum()
    assert a.unigram_loss() == pytest.approx(-np.log(p[a.val]).mean())


def test_model_is_causal_and_checks_its_input():
    fw.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16)).eval()
    ids = np.random.default_rng(1).integers(0, 11, (2, 8))
    changed = ids.copy()
    changed[:, 5:] = (changed[:, 5:] + 1) % 11
    with fw.no_grad():
        a, b = model(fw.tensor(ids)).numpy(), model(fw.tensor(changed)).numpy()
    np.testing.assert_allclose(a[:, :5], b[:, :5], rtol=1e-6, atol=1e-6)
    assert np.abs(a[:, 5:] - b[:, 5:]).max() > 1e-4
    sd = model.state_dict()
    assert "h.0.attn.c_attn.weight" in sd and "lm_head.weight" in sd and "wpe.weight" in sd
    with pytest.raises(fw.ShapeError, match="block_size"):
        model(fw.zeros(1, 9, dtype=fw.int64))
    with pytest.raises(fw.ShapeError, match="batch, time"):
        model(fw.zeros(9, dtype=fw.int64))
    with pytest.raises(fw.ArgumentError, match="n_head"):
        GPT(GPTConfig(vocab_size=11, n_embd=10, n_head=4))


def test_tied_head_shares_the_embedding_through_a_checkpoint(tmp_path):
    cfg = GPTConfig(vocab_size=13, block_size=8, n_layer=1, n_head=2, n_embd=8,
                    tie_weights=True)
    model = GPT(cfg)
    untied = GPT(GPTConfig(**{**cfg.to_dict(), "tie_weights": False}))
    assert model.lm_head.weight is model.wte.weight
    assert untied.num_parameters() - model.num_parameters() == 13 * 8
    fw.save({"model": model.state_dict()}, tmp_path / "tied.safetensors")
    again = GPT(cfg)
    again.load_state_dict(fw.load(tmp_path / "tied.safetensors")["model"])
    assert again.lm_head.weight is again.wte.weight
    ids = fw.randint(0, 13, (2, 8))
    with fw.no_grad():
        np.testing.assert_array_equal(again(ids).numpy(), model(ids).numpy())


def test_sampling_is_reproducible_and_respects_top_k():
    vocab = 7
    logits = np.linspace(0, 3, vocab)

    def fn(a):
        return np.broadcast_to(logits, a.shape + (vocab,))

    prompt = np.zeros((2, 1), dtype=np.int64)
    s1 = generate(fn, prompt, 50, block_size=4, seed=3)
    s2 = generate(fn, prompt, 50, block_size=4, seed=3)
    assert np.array_equal(s1, s2) and s1.shape == (2, 51)
    top2 = generate(fn, prompt, 200, block_size=4, top_k=2, seed=0)[:, 1:]
    assert set(np.unique(top2)) <= {vocab - 1, vocab - 2}


def test_loss_plot_without_matplotlib_says_so(tmp_path, monkeypatch):
    import sys

    from framework.demo.report import plot_losses
    from framework.demo.train import TrainResult
    res = TrainResult(losses=[3.0, 2.5, 2.0], phases=["eager", "compiled", "compiled"],
                      evals=[(3, 2.1, 2.2)], unigram_loss=3.2)
    monkeypatch.setitem(sys.modules, "matplotlib", None)   # import matplotlib fails
    msg = plot_losses(res, tmp_path / "loss.png")
    assert msg.startswith("skipped") and "matplotlib" in msg
    assert not (tmp_path / "loss.png").exists()
