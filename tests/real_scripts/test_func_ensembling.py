"""pytorch/tutorials ``intermediate_source/ensembling.py`` ported to fw.

Ten SimpleMLPs; predictions with a loop (a different minibatch per model, and the same
minibatch for all), then ``stack_module_state`` + ``functional_call`` over a deep copy of
one model moved to the ``'meta'`` device, ``vmap(fmodel)`` and
``vmap(fmodel, in_dims=(0, 0, None))``, and the ``Timer`` comparison. Images are 1x8x8 and
the hidden layers 32 wide (tutorial: 28x28, 128), minibatches of 16 (tutorial: 64).
Beyond the tutorial: ``vmap``'s ``randomness`` modes over an ensemble with dropout, an
ensemble with BatchNorm buffers in eval mode, and training the stacked ensemble (one
step compiled, compared with eager and with training each model alone).
"""
# ruff: noqa: UP008  (the original's lines are kept as written)

import copy

import numpy as np
import pytest

import framework as fw
import framework.nn as nn
import framework.nn.functional as F
from framework import vmap
from framework.func import functional_call, stack_module_state

from ._checks import np_of

IMG, HID = 8, 32   # tutorial: 28, 128


class SimpleMLP(nn.Module):
    def __init__(self):
        super(SimpleMLP, self).__init__()
        self.fc1 = nn.Linear(IMG * IMG, HID)
        self.fc2 = nn.Linear(HID, HID)
        self.fc3 = nn.Linear(HID, 10)

    def forward(self, x):
        x = x.flatten(1)
        x = self.fc1(x)
        x = F.relu(x)
        x = self.fc2(x)
        x = F.relu(x)
        x = self.fc3(x)
        return x


device = 'cpu'
num_models = 10


def _setup(model_cls=SimpleMLP, n=num_models):
    fw.manual_seed(0)
    data = fw.randn(100, 16, 1, IMG, IMG, device=device)
    targets = fw.randint(10, (1600,), device=device)
    models = [model_cls().to(device) for _ in range(n)]
    return data, targets, models


def _fmodel_for(models):
    # Construct a "stateless" version of one of the models. It is "stateless" in
    # the sense that the parameters are meta Tensors and do not have storage.
    base_model = copy.deepcopy(models[0])
    base_model = base_model.to('meta')

    def fmodel(params, buffers, x):
        return functional_call(base_model, (params, buffers), (x,))

    return base_model, fmodel


def test_vmap_ensemble_matches_the_loop():
    data, targets, models = _setup()
    # Option 1: different minibatch for each model
    minibatches = data[:num_models]
    predictions_diff_minibatch_loop = [model(minibatch) for model, minibatch in zip(models, minibatches)]
    # Option 2: Same minibatch
    minibatch = data[0]
    predictions2 = [model(minibatch) for model in models]

    params, buffers = stack_module_state(models)
    base_model, fmodel = _fmodel_for(models)
    assert base_model.fc1.weight.device.type == 'meta'
    assert models[0].fc1.weight.device.type == 'cpu'     # the copy moved, not the model

    assert [p.size(0) for p in params.values()] == [num_models] * 6
    assert params["fc1.weight"].shape == (num_models, HID, IMG * IMG) and buffers == {}
    assert minibatches.shape == (num_models, 16, 1, IMG, IMG) # verify minibatch has leading dimension of size 'num_models'

    predictions1_vmap = vmap(fmodel)(params, buffers, minibatches)
    # verify the vmap predictions match the
    assert fw.allclose(predictions1_vmap, fw.stack(predictions_diff_minibatch_loop), atol=1e-3, rtol=1e-5)

    predictions2_vmap = vmap(fmodel, in_dims=(0, 0, None))(params, buffers, minibatch)
    assert fw.allclose(predictions2_vmap, fw.stack(predictions2), atol=1e-3, rtol=1e-5)

    np.testing.assert_allclose(np_of(predictions1_vmap),
                               np_of(fw.stack(predictions_diff_minibatch_loop)),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np_of(predictions2_vmap), np_of(fw.stack(predictions2)),
                               rtol=1e-5, atol=1e-6)
    # the models differ: one model's output broadcast to all would not pass
    assert (predictions2_vmap[0] - predictions2_vmap[1]).abs().max().item() > 1e-2


def test_stack_module_state_gives_fresh_leaves_that_require_grad():
    _, _, models = _setup(n=3)
    params, _ = stack_module_state(models)
    for name, p in params.items():
        assert p.is_leaf and p.requires_grad, name
        for i, m in enumerate(models):
            np.testing.assert_array_equal(p[i].detach().numpy(),
                                          dict(m.named_parameters())[name].detach().numpy())
    with fw.no_grad():
        params["fc1.bias"].zero_()    # a copy: the models keep their own values
    assert models[0].fc1.bias.abs().sum().item() > 0


class DropoutMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(IMG * IMG, HID)
        self.drop = nn.Dropout(0.5)
        self.fc2 = nn.Linear(HID, 10)

    def forward(self, x):
        return self.fc2(self.drop(F.relu(self.fc1(x.flatten(1)))))


def test_vmap_randomness_modes_over_an_ensemble_with_dropout():
    data, _, models = _setup(DropoutMLP, n=4)
    params, buffers = stack_module_state(models)
    # the same weights in every slot, so only the dropout masks can differ
    same = {k: v[:1].expand(4, *v.shape[1:]) for k, v in params.items()}
    base_model, fmodel = _fmodel_for(models)
    x = data[0]
    with pytest.raises(RuntimeError, match="randomness"):
        vmap(fmodel, in_dims=(0, 0, None))(same, buffers, x)
    out_same = vmap(fmodel, in_dims=(0, 0, None), randomness='same')(same, buffers, x)
    out_diff = vmap(fmodel, in_dims=(0, 0, None), randomness='different')(same, buffers, x)
    for i in range(1, 4):
        np.testing.assert_array_equal(np_of(out_same[i]), np_of(out_same[0]))
        assert (out_diff[i] - out_diff[0]).abs().max().item() > 1e-3
    base_model.eval()     # eval mode: no dropout, so no randomness is needed at all
    out_eval = vmap(fmodel, in_dims=(0, 0, None))(same, buffers, x)
    np.testing.assert_allclose(np_of(out_eval[0]), np_of(models[0].eval()(x)),
                               rtol=1e-5, atol=1e-6)
    assert (out_same[0] - out_eval[0]).abs().max().item() > 1e-3


class BNMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(IMG * IMG, HID)
        self.bn = nn.BatchNorm1d(HID)
        self.fc2 = nn.Linear(HID, 10)

    def forward(self, x):
        return self.fc2(F.relu(self.bn(self.fc1(x.flatten(1)))))


def test_ensemble_with_batchnorm_buffers_in_eval_mode():
    data, _, models = _setup(BNMLP, n=3)
    for i, m in enumerate(models):      # distinct running statistics per model
        m.bn.running_mean.normal_()
        m.bn.running_var.uniform_(0.5, 2.0)
        m.eval()
    params, buffers = stack_module_state(models)
    assert buffers["bn.running_mean"].shape == (3, HID)
    base_model, fmodel = _fmodel_for(models)
    out = vmap(fmodel)(params, buffers, data[:3])
    ref = fw.stack([m(x) for m, x in zip(models, data[:3])])
    np.testing.assert_allclose(np_of(out), np_of(ref), rtol=1e-5, atol=1e-5)


def _trainer(params, buffers, fmodel, compiled=False):
    """An SGD step on the stacked parameters. They reach the step through the closure and
    the optimizer (passing them as arguments too would make the compiled step run eagerly:
    one tensor reached two ways)."""
    opt = fw.optim.SGD(params.values(), lr=0.1, momentum=0.9)

    def step(minibatches, targets):
        logits = vmap(fmodel)(params, buffers, minibatches)          # (models, batch, 10)
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction='sum')
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    return fw.compile(step) if compiled else step


def test_training_the_stacked_ensemble_eager_compiled_and_per_model():
    data, targets, models = _setup(n=3)
    params, buffers = stack_module_state(models)
    _, fmodel = _fmodel_for(models)
    y = targets[:48].view(3, 16)
    eager_params = {k: v.detach().clone().requires_grad_() for k, v in params.items()}
    eager_step = _trainer(eager_params, buffers, fmodel)
    eager = [eager_step(data[:3], y).item() for _ in range(4)]
    assert eager[-1] < eager[0] * 0.7, eager

    comp_params = {k: v.detach().clone().requires_grad_() for k, v in params.items()}
    compiled_step = _trainer(comp_params, buffers, fmodel, compiled=True)
    comp = [compiled_step(data[:3], y).item() for _ in range(4)]
    np.testing.assert_allclose(comp, eager, rtol=1e-4, atol=1e-5)
    for k in params:
        np.testing.assert_allclose(np_of(comp_params[k]), np_of(eager_params[k]),
                                   rtol=1e-4, atol=1e-5)
    st = compiled_step.stats()
    assert st["captures"] == 1 and st["num_recompiles"] == 0, st["recompiles"]
    assert not st["graph_breaks"] and st["cache_hits"] >= 2, st

    # the summed loss separates per model: each model trained alone lands on its slice
    for i, m in enumerate(models):
        opt = fw.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
        for _ in range(4):
            loss = F.cross_entropy(m(data[i]), y[i], reduction='sum')
            opt.zero_grad()
            loss.backward()
            opt.step()
        for name, p in m.named_parameters():
            np.testing.assert_allclose(np_of(eager_params[name][i]), np_of(p),
                                       rtol=1e-4, atol=1e-5)


def test_the_timer_comparison_runs():
    from framework.utils.benchmark import Timer
    data, _, models = _setup(n=3)
    minibatches = data[:3]
    params, buffers = stack_module_state(models)
    _, fmodel = _fmodel_for(models)
    env = dict(models=models, minibatches=minibatches, vmap=vmap, fmodel=fmodel,
               params=params, buffers=buffers)
    without_vmap = Timer(
        stmt="[model(minibatch) for model, minibatch in zip(models, minibatches)]",
        globals=env)
    with_vmap = Timer(
        stmt="vmap(fmodel)(params, buffers, minibatches)",
        globals=env)
    assert f'{without_vmap.timeit(2)}' and f'{with_vmap.timeit(2)}'
