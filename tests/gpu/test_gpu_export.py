"""fw.export on "cuda": an exported program's module moved to the GPU runs there (creation
ops in the graph follow the inputs' device), and a program exported on the GPU saves and
loads bit-identically."""

import io

import numpy as np

import framework as fw
from framework import nn
from framework.export import Dim, export, load, save


class _WithCreation(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(8, 4)

    def forward(self, x):
        return self.lin(x).relu() + fw.ones(x.shape[0], 4, device=x.device)


def test_exported_module_runs_on_cuda_and_round_trips():
    fw.manual_seed(0)
    model = _WithCreation()
    x = fw.randn(5, 8)
    with fw.no_grad():
        expected = model(x).numpy()
    ep = export(model, (fw.randn(4, 8),), dynamic_shapes={"x": {0: Dim("b")}})
    m = ep.module().to("cuda")
    got = m(x.to("cuda"))
    assert got.device.type == "cuda"
    np.testing.assert_allclose(got.detach().cpu().numpy(), expected, rtol=1e-5, atol=1e-6)

    gep = export(m, (x.to("cuda"),), dynamic_shapes={"x": {0: Dim("b")}})
    buf = io.BytesIO()
    save(gep, buf)
    buf.seek(0)
    back = load(buf)
    assert back.state_dict["lin.weight"].device.type == "cuda"
    xs = fw.randn(3, 8, device="cuda")
    np.testing.assert_array_equal(back.module()(xs).detach().cpu().numpy(),
                                  gep.module()(xs).detach().cpu().numpy())
