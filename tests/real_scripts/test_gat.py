"""pytorch/examples gat/main.py ported to ``fw`` with only the imports changed.

The Cora download is replaced by a small random graph written in Cora's file format
(tests/real_scripts/_cora_like.py), so the script's ``load_cora`` runs unchanged; its
adjacency is dense (``eye + sparse``), as in the original. The layers' long docstrings are
shortened; the code is the original's.
"""
# ruff: noqa: UP008, E501  (the original's lines are kept as written)

import math
import os
import time

import numpy as np
import pytest

import framework as fw
from framework import nn
from framework.nn import functional as F
from framework.optim import Adam

from ._checks import assert_params_close, assert_stats, grad_leaves
from ._cora_like import write_cora

torch = fw  # the scripts' ``torch.xxx`` calls read as ``fw.xxx``


class GraphAttentionLayer(nn.Module):
    def __init__(self, in_features: int, out_features: int, n_heads: int, concat: bool = False, dropout: float = 0.4, leaky_relu_slope: float = 0.2):
        super(GraphAttentionLayer, self).__init__()
        self.n_heads = n_heads
        self.concat = concat
        self.dropout = dropout
        if concat:
            self.out_features = out_features
            assert out_features % n_heads == 0
            self.n_hidden = out_features // n_heads
        else:
            self.n_hidden = out_features
        self.W = nn.Parameter(torch.empty(size=(in_features, self.n_hidden * n_heads)))
        self.a = nn.Parameter(torch.empty(size=(n_heads, 2 * self.n_hidden, 1)))
        self.leakyrelu = nn.LeakyReLU(leaky_relu_slope)
        self.softmax = nn.Softmax(dim=1)
        self.reset_parameters()
    def reset_parameters(self):
        nn.init.xavier_normal_(self.W)
        nn.init.xavier_normal_(self.a)
    def _get_attention_scores(self, h_transformed: torch.Tensor):
        source_scores = torch.matmul(h_transformed, self.a[:, :self.n_hidden, :])
        target_scores = torch.matmul(h_transformed, self.a[:, self.n_hidden:, :])
        e = source_scores + target_scores.mT
        return self.leakyrelu(e)
    def forward(self,  h: torch.Tensor, adj_mat: torch.Tensor):
        n_nodes = h.shape[0]
        h_transformed = torch.mm(h, self.W)
        h_transformed = F.dropout(h_transformed, self.dropout, training=self.training)
        h_transformed = h_transformed.view(n_nodes, self.n_heads, self.n_hidden).permute(1, 0, 2)
        e = self._get_attention_scores(h_transformed)
        connectivity_mask = -9e16 * torch.ones_like(e)
        e = torch.where(adj_mat > 0, e, connectivity_mask)
        attention = F.softmax(e, dim=-1)
        attention = F.dropout(attention, self.dropout, training=self.training)
        h_prime = torch.matmul(attention, h_transformed)
        if self.concat:
            h_prime = h_prime.permute(1, 0, 2).contiguous().view(n_nodes, self.out_features)
        else:
            h_prime = h_prime.mean(dim=0)
        return h_prime

class GAT(nn.Module):
    def __init__(self, in_features, n_hidden, n_heads, num_classes, concat=False, dropout=0.4, leaky_relu_slope=0.2):
        super(GAT, self).__init__()
        self.gat1 = GraphAttentionLayer(in_features=in_features, out_features=n_hidden, n_heads=n_heads, concat=concat, dropout=dropout, leaky_relu_slope=leaky_relu_slope)
        self.gat2 = GraphAttentionLayer(in_features=n_hidden, out_features=num_classes, n_heads=1, concat=False, dropout=dropout, leaky_relu_slope=leaky_relu_slope)
    def forward(self, input_tensor: torch.Tensor , adj_mat: torch.Tensor):
        x = self.gat1(input_tensor, adj_mat)
        x = F.elu(x)
        x = self.gat2(x, adj_mat)
        return F.log_softmax(x, dim=1)

def load_cora(path='./cora', device='cpu'):
    content_path = os.path.join(path, 'cora.content')
    cites_path = os.path.join(path, 'cora.cites')
    content_tensor = np.genfromtxt(content_path, dtype=np.dtype(str))
    cites_tensor = np.genfromtxt(cites_path, dtype=np.int32)
    features = torch.FloatTensor(content_tensor[:, 1:-1].astype(np.int32))
    scale_vector = torch.sum(features, dim=1)
    scale_vector = 1 / scale_vector
    scale_vector[scale_vector == float('inf')] = 0
    scale_vector = torch.diag(scale_vector).to_sparse()
    features = scale_vector @ features
    classes, labels = np.unique(content_tensor[:, -1], return_inverse=True)
    labels = torch.LongTensor(labels)
    idx = content_tensor[:, 0].astype(np.int32)
    idx_map = {id: pos for pos, id in enumerate(idx)}
    edges = np.array(list(map(lambda edge: [idx_map[edge[0]], idx_map[edge[1]]], cites_tensor)), dtype=np.int32)
    V = len(idx)
    E = edges.shape[0]
    adj_mat = torch.sparse_coo_tensor(edges.T, torch.ones(E), (V, V), dtype=torch.int64)
    adj_mat = torch.eye(V) + adj_mat
    return features.to(device), labels.to(device), adj_mat.to(device)


def train_iter(epoch, model, optimizer, criterion, input, target, mask_train, mask_val, print_every=10):
    start_t = time.time()
    model.train()
    optimizer.zero_grad()

    # Forward pass
    output = model(*input)
    loss = criterion(output[mask_train], target[mask_train]) # Compute the loss using the training mask

    loss.backward()
    optimizer.step()

    # Evaluate the model performance on training and validation sets
    loss_train, acc_train = evaluate(model, criterion, input, target, mask_train)
    loss_val, acc_val = evaluate(model, criterion, input, target, mask_val)

    if epoch % print_every == 0:
        # Print the training progress at specified intervals
        print(f'Epoch: {epoch:04d} ({(time.time() - start_t):.4f}s) loss_train: {loss_train:.4f} acc_train: {acc_train:.4f} loss_val: {loss_val:.4f} acc_val: {acc_val:.4f}')
    return loss_train, acc_train


def evaluate(model, criterion, input, target, mask):
    """The original ``test`` (renamed so pytest does not collect it)."""
    model.eval()
    with torch.no_grad():
        output = model(*input)
        output, target = output[mask], target[mask]

        loss = criterion(output, target)
        acc = (output.argmax(dim=1) == target).float().sum() / len(target)
    return loss.item(), acc.item()


# -- tests ----------------------------------------------------------------------------------
@pytest.fixture
def cora(tmp_path):
    raw = write_cora(str(tmp_path / "cora"))
    return load_cora(str(tmp_path / "cora")), raw


def _split(n):
    idx = torch.randperm(n)
    return idx[:10], idx[10:20], idx[20:]


def _gat(features, labels, concat=True, dropout=0.6, heads=2, hidden=8):
    return GAT(in_features=features.shape[1], n_hidden=hidden, n_heads=heads,
               num_classes=labels.max().item() + 1, concat=concat, dropout=dropout,
               leaky_relu_slope=0.2)


def _numpy_layer(layer, h, adj):
    """The layer's eval-mode forward written in NumPy (float64)."""
    W = layer.W.detach().numpy().astype(np.float64)
    a = layer.a.detach().numpy().astype(np.float64)
    n, H, d = h.shape[0], layer.n_heads, layer.n_hidden
    ht = (h @ W).reshape(n, H, d).transpose(1, 0, 2)                 # (H, n, d)
    e = ht @ a[:, :d, :] + (ht @ a[:, d:, :]).transpose(0, 2, 1)    # (H, n, n)
    e = np.where(e > 0, e, 0.2 * e)
    e = np.where(adj > 0, e, -9e16)
    att = np.exp(e - e.max(-1, keepdims=True))
    att /= att.sum(-1, keepdims=True)
    hp = att @ ht
    return hp.transpose(1, 0, 2).reshape(n, H * d) if layer.concat else hp.mean(0)


@pytest.mark.parametrize("concat", [True, False])
def test_gat_eval_forward_matches_numpy(cora, concat):
    (features, labels, adj_mat), _ = cora
    torch.manual_seed(13)
    model = _gat(features, labels, concat=concat).eval()
    x = features.numpy().astype(np.float64)
    adj = adj_mat.numpy()
    h = _numpy_layer(model.gat1, x, adj)
    h = np.where(h > 0, h, np.expm1(h))                              # elu
    z = _numpy_layer(model.gat2, h, adj)
    want = z - z.max(1, keepdims=True)
    want = want - np.log(np.exp(want).sum(1, keepdims=True))
    with torch.no_grad():
        got = model(features, adj_mat).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_gat_trains_eagerly(cora, capsys):
    (features, labels, adj_mat), _ = cora
    assert features.layout is torch.strided and adj_mat.dtype is torch.float32
    torch.manual_seed(13)
    idx_test, idx_val, idx_train = _split(len(labels))
    model = _gat(features, labels, dropout=0.2)
    optimizer = Adam(model.parameters(), lr=0.02, weight_decay=5e-4)
    criterion = nn.NLLLoss()
    history = [train_iter(epoch + 1, model, optimizer, criterion, (features, adj_mat), labels,
                          idx_train, idx_val, 20) for epoch in range(30)]
    assert history[-1][0] < 0.8 * history[0][0], history
    assert history[-1][1] >= 0.8, history
    loss_test, acc_test = evaluate(model, criterion, (features, adj_mat), labels, idx_test)
    assert math.isfinite(loss_test) and 0 <= acc_test <= 1
    assert "Epoch: 0020" in capsys.readouterr().out


def _run(cora, compiled, steps=4):
    (features, labels, adj_mat), _ = cora
    torch.manual_seed(13)
    idx_test, idx_val, idx_train = _split(len(labels))
    model = _gat(features, labels)
    optimizer = Adam(model.parameters(), lr=0.005, weight_decay=5e-4)
    criterion = nn.NLLLoss()

    def train_step(input, target, mask_train):
        model.train()
        optimizer.zero_grad()
        output = model(*input)
        loss = criterion(output[mask_train], target[mask_train])
        loss.backward()
        optimizer.step()
        return loss

    step = fw.compile(train_step, mode="always") if compiled else train_step
    losses = []
    for i in range(steps):
        torch.manual_seed(100 + i)  # the dropout masks, identical for both runs
        losses.append(step((features, adj_mat), labels, idx_train).item())
    return losses, model, step


def test_gat_compiled_step_matches_eager_and_compiles_once(cora):
    eager_losses, eager_model, _ = _run(cora, False)
    comp_losses, comp_model, step = _run(cora, True)
    np.testing.assert_allclose(comp_losses, eager_losses, rtol=1e-4, atol=1e-5)
    assert_params_close(comp_model, eager_model)
    assert_stats(step, captures=1, num_recompiles=0, eager_reason=None, graph_breaks=[])


def test_gat_gradcheck_float64(cora):
    """Masked multi-head attention, LeakyReLU, ELU and the head concat/mean, against
    finite differences (dropout off: eval mode)."""
    (features, labels, adj_mat), _ = cora
    torch.manual_seed(0)
    keep = torch.arange(12)  # a 12-node subgraph keeps the Jacobians small
    x = features[keep].double()
    adj = adj_mat[keep][:, keep]
    model = _gat(features, labels, heads=2, hidden=4).double().eval()
    target = labels[keep]

    def loss_of(w1, a1, a2):
        model.gat1.W, model.gat1.a, model.gat2.a = w1, a1, a2
        return F.nll_loss(model(x, adj), target)

    params = grad_leaves(model.gat1.W, model.gat1.a, model.gat2.a)
    for name in ("W", "a"):
        delattr(model.gat1, name)
    delattr(model.gat2, "a")
    assert fw.autograd.gradcheck(loss_of, params, eps=1e-6, atol=1e-5)


def test_gat_onnx_export_and_checkpoint(cora, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    (features, labels, adj_mat), _ = cora
    torch.manual_seed(0)
    model = _gat(features, labels).eval()
    path = str(tmp_path / "gat.onnx")
    fw.onnx.export(model, (features, adj_mat), path, input_names=["x", "adj"],
                   dynamic_axes={"x": {0: "nodes"}, "adj": {0: "nodes", 1: "nodes"}})
    sess = ort.InferenceSession(path)
    sub = torch.arange(25)
    for x, adj in ((features, adj_mat), (features[sub], adj_mat[sub][:, sub])):
        (got,) = sess.run(None, {"x": x.numpy(), "adj": adj.numpy()})
        with torch.no_grad():
            np.testing.assert_allclose(got, model(x, adj).numpy(), rtol=1e-4, atol=1e-5)
    ck = str(tmp_path / "gat.pth")
    torch.save(model.state_dict(), ck)
    other = _gat(features, labels).eval()
    other.load_state_dict(torch.load(ck))
    with torch.no_grad():
        np.testing.assert_array_equal(other(features, adj_mat).numpy(),
                                      model(features, adj_mat).numpy())
