"""ONNX export of complex arithmetic (compiler/passes/complex_pairs.py): complex values
become real (..., 2) pairs, so rotary embeddings written with torch.polar /
view_as_complex (Meta's llama) export; what cannot be lowered is refused by name."""

import numpy as np
import pytest

import framework as fw

pytest.importorskip("onnxruntime")


def _freqs_cis(dim, end, theta=10000.0):
    freqs = 1.0 / (theta ** (fw.arange(0, dim, 2)[: (dim // 2)].float() / dim))
    t = fw.arange(end)
    freqs = fw.outer(t, freqs).float()
    return fw.polar(fw.ones_like(freqs), freqs)


def test_llama_rotary_embedding_exports(tmp_path):
    freqs_cis = _freqs_cis(8, 32)  # a complex64 constant the function reads

    def rope(xq):
        _, seqlen, _, _ = xq.shape
        xq_ = fw.view_as_complex(xq.float().reshape(*xq.shape[:-1], -1, 2))
        f = freqs_cis[:seqlen].view(1, seqlen, 1, xq_.shape[-1])
        return fw.view_as_real(xq_ * f).flatten(3).type_as(xq)

    x = fw.randn(2, 6, 3, 8)
    model = fw.onnx.export(rope, (x,), str(tmp_path / "rope.onnx"), input_names=["xq"],
                           dynamic_axes={"xq": {0: "b"}}, verify=True)
    init = {i.name: i for i in model.graph.initializer}
    assert all(i.data_type != 14 for i in init.values())  # no COMPLEX64 initializer
    import onnxruntime as ort
    sess = ort.InferenceSession(str(tmp_path / "rope.onnx"))
    x = fw.randn(5, 6, 3, 8)
    np.testing.assert_allclose(sess.run(None, {"xq": x.numpy()})[0], rope(x).numpy(),
                               rtol=1e-5, atol=1e-6)


def test_complex_ops_lower_as_pairs():
    z0 = fw.randn(3, 4, dtype=fw.complex64)

    def f(x):
        zc = fw.view_as_complex(x)
        a = zc * z0 + 1j * zc - zc.conj() / 2
        b = a.unsqueeze(0).expand(2, 3, 4).permute(0, 2, 1)[1, 1:3]
        c = fw.polar(x[..., 0].abs(), x[..., 1]) - fw.complex(x[..., 1], x[..., 0]) * 2.5
        d = (a / (c + 3.0)).to(fw.complex128)
        e = -(zc * x[..., 0]) + (1.5 - zc)
        return (fw.view_as_real(b).sum() + c.real * d.imag.float() + e.imag
                + fw.view_as_real(d).float()[..., 0])

    fw.onnx.export(f, (fw.randn(3, 4, 2),), verify=True)


def test_complex_inputs_outputs_and_other_ops_are_refused():
    x = fw.randn(3, 4, 2)
    with pytest.raises(NotImplementedError, match="returns a complex tensor"):
        fw.onnx.export(lambda x: fw.view_as_complex(x) * 2, (x,))
    with pytest.raises(NotImplementedError, match="input z is complex"):
        fw.onnx.export(lambda z: fw.view_as_real(z * 2), (fw.randn(3, dtype=fw.complex64),),
                       input_names=["z"])
    with pytest.raises(NotImplementedError, match="on a complex value has no lowering"):
        fw.onnx.export(lambda x: fw.view_as_real(fw.view_as_complex(x).exp()), (x,))
