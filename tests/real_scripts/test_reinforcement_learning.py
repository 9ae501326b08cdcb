"""pytorch/examples reinforcement_learning/reinforce.py and actor_critic.py ported to ``fw``.

Only the imports changed (``torch = fw``), plus: the gym CartPole environment is replaced
by :class:`CorridorEnv`, a tiny deterministic environment with gym's ``reset``/``step``
interface, and the scripts' module globals (``policy``/``model``, ``optimizer``, ``args``)
are passed in as arguments so both scripts live in one file.
"""
# ruff: noqa: UP008, E501  (the original's lines are kept as written)

import math
from collections import deque, namedtuple
from itertools import count
from types import SimpleNamespace

import numpy as np
import pytest

import framework as fw
from framework import nn, optim
from framework.distributions import Categorical
from framework.nn import functional as F

from ._checks import assert_params_close, assert_stats, grad_leaves

torch = fw  # the scripts' ``torch.xxx`` calls read as ``fw.xxx``

args = SimpleNamespace(gamma=0.99, seed=543, render=False, log_interval=10)


class CorridorEnv:
    """Stand-in for CartPole: the state is 4 float32 numbers drawn from a seeded RNG; the
    right action is ``int(state[0] + 0.5 * state[2] > 0)``. With ``fixed_length`` every
    episode lasts ``max_steps`` steps and a right action earns 1, a wrong one 0; otherwise
    the third wrong action ends the episode (reward 1 per step survived, as CartPole; an
    episode is never a single step, whose return would have no std)."""

    spec = SimpleNamespace(reward_threshold=15.0)

    def __init__(self, max_steps=20, fixed_length=False):
        self.max_steps, self.fixed_length = max_steps, fixed_length
        self._rng = np.random.RandomState(0)

    def _draw(self):
        self.state = self._rng.uniform(-1, 1, 4).astype(np.float32)
        return self.state.copy()

    def reset(self, seed=None):
        if seed is not None:
            self._rng = np.random.RandomState(seed)
        self.t = self.wrong = 0
        return self._draw(), {}

    def step(self, action):
        right = int(self.state[0] + 0.5 * self.state[2] > 0)
        self.t += 1
        ok = int(action) == right
        self.wrong += not ok
        reward = 1.0 if ok or not self.fixed_length else 0.0
        terminated = self.wrong >= 3 and not self.fixed_length
        return self._draw(), reward, terminated, self.t >= self.max_steps, {}


# -- reinforce.py -------------------------------------------------------------------------
class Policy(nn.Module):
    def __init__(self):
        super(Policy, self).__init__()
        self.affine1 = nn.Linear(4, 128)
        self.dropout = nn.Dropout(p=0.6)
        self.affine2 = nn.Linear(128, 2)

        self.saved_log_probs = []
        self.rewards = []

    def forward(self, x):
        x = self.affine1(x)
        x = self.dropout(x)
        x = F.relu(x)
        action_scores = self.affine2(x)
        return F.softmax(action_scores, dim=1)


eps = np.finfo(np.float32).eps.item()


def select_action(policy, state):
    state = torch.from_numpy(state).float().unsqueeze(0)
    probs = policy(state)
    m = Categorical(probs)
    action = m.sample()
    policy.saved_log_probs.append(m.log_prob(action))
    return action.item()


def finish_episode(policy, optimizer):
    R = 0
    policy_loss = []
    returns = deque()
    for r in policy.rewards[::-1]:
        R = r + args.gamma * R
        returns.appendleft(R)
    returns = torch.tensor(returns)
    returns = (returns - returns.mean()) / (returns.std() + eps)
    for log_prob, R in zip(policy.saved_log_probs, returns):
        policy_loss.append(-log_prob * R)
    optimizer.zero_grad()
    policy_loss = torch.cat(policy_loss).sum()
    policy_loss.backward()
    optimizer.step()
    del policy.rewards[:]
    del policy.saved_log_probs[:]
    return policy_loss


def reinforce_main(env, policy, optimizer, max_episodes):
    running_reward = 10
    rewards = []
    for i_episode in count(1):
        state, _ = env.reset()
        ep_reward = 0
        for t in range(1, 10000):  # Don't infinite loop while learning
            action = select_action(policy, state)
            state, reward, terminated, truncated, _ = env.step(action)
            policy.rewards.append(reward)
            ep_reward += reward
            if terminated or truncated:
                break

        running_reward = 0.05 * ep_reward + (1 - 0.05) * running_reward
        finish_episode(policy, optimizer)
        rewards.append(ep_reward)
        if running_reward > env.spec.reward_threshold or i_episode >= max_episodes:
            break
    return rewards


# -- actor_critic.py ----------------------------------------------------------------------
SavedAction = namedtuple('SavedAction', ['log_prob', 'value'])


class ActorCriticPolicy(nn.Module):
    """
    implements both actor and critic in one model
    """
    def __init__(self):
        super(ActorCriticPolicy, self).__init__()
        self.affine1 = nn.Linear(4, 128)

        # actor's layer
        self.action_head = nn.Linear(128, 2)

        # critic's layer
        self.value_head = nn.Linear(128, 1)

        # action & reward buffer
        self.saved_actions = []
        self.rewards = []

    def forward(self, x):
        x = F.relu(self.affine1(x))
        action_prob = F.softmax(self.action_head(x), dim=-1)
        state_values = self.value_head(x)
        return action_prob, state_values


def ac_select_action(model, state):
    state = torch.from_numpy(state).float()
    probs, state_value = model(state)
    m = Categorical(probs)
    action = m.sample()
    model.saved_actions.append(SavedAction(m.log_prob(action), state_value))
    return action.item()


def ac_finish_episode(model, optimizer):
    R = 0
    saved_actions = model.saved_actions
    policy_losses = []  # list to save actor (policy) loss
    value_losses = []  # list to save critic (value) loss
    returns = []  # list to save the true values
    for r in model.rewards[::-1]:
        R = r + args.gamma * R
        returns.insert(0, R)

    returns = torch.tensor(returns)
    returns = (returns - returns.mean()) / (returns.std() + eps)

    for (log_prob, value), R in zip(saved_actions, returns):
        advantage = R - value.item()
        policy_losses.append(-log_prob * advantage)
        value_losses.append(F.smooth_l1_loss(value, torch.tensor([R])))

    optimizer.zero_grad()
    loss = torch.stack(policy_losses).sum() + torch.stack(value_losses).sum()
    loss.backward()
    optimizer.step()
    del model.rewards[:]
    del model.saved_actions[:]
    return loss


def ac_main(env, model, optimizer, max_episodes):
    running_reward = 10
    rewards = []
    for i_episode in count(1):
        state, _ = env.reset()
        ep_reward = 0
        for t in range(1, 10000):
            action = ac_select_action(model, state)
            state, reward, terminated, truncated, _ = env.step(action)
            model.rewards.append(reward)
            ep_reward += reward
            if terminated or truncated:
                break
        running_reward = 0.05 * ep_reward + (1 - 0.05) * running_reward
        ac_finish_episode(model, optimizer)
        rewards.append(ep_reward)
        if running_reward > env.spec.reward_threshold or i_episode >= max_episodes:
            break
    return rewards


# -- tests ----------------------------------------------------------------------------------
_PROBE = np.random.RandomState(99).uniform(-1, 1, (64, 4)).astype(np.float32)
_PROBE_RIGHT = (_PROBE[:, 0] + 0.5 * _PROBE[:, 2] > 0).astype(np.int64)


def _p_right(probs):
    return float(probs.numpy()[np.arange(len(_PROBE)), _PROBE_RIGHT].mean())


def _setup(cls, lr):
    env = CorridorEnv()
    env.reset(seed=args.seed)
    torch.manual_seed(args.seed)
    model = cls()
    return env, model, optim.Adam(model.parameters(), lr=lr)


def test_reinforce_learns_the_corridor():
    env, policy, optimizer = _setup(Policy, 1e-2)
    policy.eval()
    with torch.no_grad():
        before = _p_right(policy(torch.from_numpy(_PROBE)))
    policy.train()
    rewards = reinforce_main(env, policy, optimizer, max_episodes=60)
    policy.eval()
    with torch.no_grad():
        after = _p_right(policy(torch.from_numpy(_PROBE)))
    assert after > before + 0.15 and after > 0.68, (before, after)
    assert np.mean(rewards[-10:]) > 1.5 * np.mean(rewards[:10]), rewards
    assert policy.rewards == [] and policy.saved_log_probs == []


def test_actor_critic_learns_the_corridor():
    env, model, optimizer = _setup(ActorCriticPolicy, 3e-2)
    with torch.no_grad():
        before = _p_right(model(torch.from_numpy(_PROBE))[0])
    rewards = ac_main(env, model, optimizer, max_episodes=60)
    with torch.no_grad():
        after = _p_right(model(torch.from_numpy(_PROBE))[0])
    assert after > before + 0.2 and after > 0.75, (before, after)
    assert np.mean(rewards[-10:]) > 2 * np.mean(rewards[:10]), rewards


def _episode(model, select, n=6):
    """One fixed-length episode with the given select_action; returns the states."""
    env = CorridorEnv(max_steps=n, fixed_length=True)
    state, _ = env.reset(seed=1)
    states = []
    for _ in range(n):
        states.append(state)
        state, reward, _, _, _ = env.step(select(model, state))
        model.rewards.append(reward)
    return np.stack(states)


def test_reinforce_finish_episode_matches_numpy():
    torch.manual_seed(0)
    policy = Policy()
    policy.eval()  # no dropout: the probabilities are a plain function of the states
    with torch.no_grad():  # far from uniform, so the loss is not ~0 (returns sum to 0)
        policy.affine2.weight.mul_(30)
    optimizer = optim.SGD(policy.parameters(), lr=0.0)
    states = _episode(policy, select_action)
    logp = np.concatenate([lp.detach().numpy() for lp in policy.saved_log_probs])
    rewards = list(policy.rewards)
    with torch.no_grad():
        probs = policy(torch.from_numpy(states)).numpy().astype(np.float64)
    # the sampled actions' log-probabilities are log(probs[action])
    acts = [int(np.argmin(np.abs(np.log(p) - lp))) for p, lp in zip(probs, logp)]
    np.testing.assert_allclose(logp, np.log(probs[np.arange(len(acts)), acts]), rtol=1e-5)
    loss = finish_episode(policy, optimizer).item()
    ret = np.array([sum(args.gamma ** k * r for k, r in enumerate(rewards[i:]))
                    for i in range(len(rewards))])
    ret = (ret - ret.mean()) / (ret.std(ddof=1) + eps)  # torch.std is unbiased
    assert math.isclose(loss, float(-(logp * ret).sum()), rel_tol=1e-5, abs_tol=1e-6)


def test_actor_critic_finish_episode_matches_numpy():
    torch.manual_seed(0)
    model = ActorCriticPolicy()
    optimizer = optim.SGD(model.parameters(), lr=0.0)
    states = _episode(model, ac_select_action)
    logp = np.array([sa.log_prob.item() for sa in model.saved_actions])
    values = np.array([sa.value.item() for sa in model.saved_actions])
    rewards = list(model.rewards)
    loss = ac_finish_episode(model, optimizer).item()
    ret = np.array([sum(args.gamma ** k * r for k, r in enumerate(rewards[i:]))
                    for i in range(len(rewards))])
    ret = (ret - ret.mean()) / (ret.std(ddof=1) + eps)
    d = np.abs(values - ret)
    smooth_l1 = np.where(d < 1.0, 0.5 * d ** 2, d - 0.5)
    want = -(logp * (ret - values)).sum() + smooth_l1.sum()
    assert len(states) == 6
    assert math.isclose(loss, float(want), rel_tol=1e-5, abs_tol=1e-6)


def test_categorical_sampling_frequencies_and_finfo_eps():
    assert torch.finfo(torch.float32).eps == eps
    torch.manual_seed(0)
    m = Categorical(torch.tensor([[0.2, 0.8]]))
    draws = np.array([m.sample().item() for _ in range(2000)])
    assert abs(draws.mean() - 0.8) < 0.03
    assert m.sample().shape == (1,) and m.sample().dtype == torch.int64


# The compiled step replays a fixed-length episode: the script's forward, Categorical,
# log_prob, return normalisation, loss, backward and Adam step, all under fw.compile.
def _reinforce_replay(policy, optimizer):
    def step(states, actions, returns):
        returns = (returns - returns.mean()) / (returns.std() + eps)
        policy_loss = []
        for state, action, R in zip(states, actions, returns):
            m = Categorical(policy(state.unsqueeze(0)))
            policy_loss.append(-m.log_prob(action) * R)
        optimizer.zero_grad()
        policy_loss = torch.cat(policy_loss).sum()
        policy_loss.backward()
        optimizer.step()
        return policy_loss
    return step


def _ac_replay(model, optimizer, use_item=True):
    def step(states, actions, returns):
        returns = (returns - returns.mean()) / (returns.std() + eps)
        policy_losses, value_losses = [], []
        for state, action, R in zip(states, actions, returns):
            probs, value = model(state)
            m = Categorical(probs)
            if use_item:
                advantage = R - value.item()
            else:
                # GAP: value.item() is a graph break (the whole step runs eagerly, where
                # torch.compile would compile the pieces around it); the same value, kept
                # in the graph:
                advantage = R - value.detach()[0]
            policy_losses.append(-m.log_prob(action) * advantage)
            value_losses.append(F.smooth_l1_loss(value, torch.tensor([R])))
        optimizer.zero_grad()
        loss = torch.stack(policy_losses).sum() + torch.stack(value_losses).sum()
        loss.backward()
        optimizer.step()
        return loss
    return step


def _replay_run(cls, make_step, compiled, lr):
    torch.manual_seed(args.seed)
    model = cls()
    optimizer = optim.Adam(model.parameters(), lr=lr)
    step = make_step(model, optimizer)
    step = fw.compile(step, mode="always") if compiled else step
    rng = np.random.RandomState(4)
    losses = []
    for i in range(4):
        states = torch.from_numpy(rng.uniform(-1, 1, (6, 4)).astype(np.float32))
        actions = torch.from_numpy(rng.randint(0, 2, 6))
        returns = torch.tensor(deque(float(v) for v in rng.uniform(0, 3, 6)))
        torch.manual_seed(100 + i)  # the dropout masks, identical for both runs
        losses.append(step(states, actions, returns).item())
    return losses, model, step


def _ac_replay_no_item(model, optimizer):
    return _ac_replay(model, optimizer, use_item=False)


@pytest.mark.parametrize("name", ["reinforce", "actor_critic"])
def test_compiled_replay_step_matches_eager_and_compiles_once(name):
    cls, make, lr = {"reinforce": (Policy, _reinforce_replay, 1e-2),
                     "actor_critic": (ActorCriticPolicy, _ac_replay_no_item, 3e-2)}[name]
    eager_losses, eager_model, _ = _replay_run(cls, make, False, lr)
    comp_losses, comp_model, step = _replay_run(cls, make, True, lr)
    np.testing.assert_allclose(comp_losses, eager_losses, rtol=1e-4, atol=1e-5)
    assert_params_close(comp_model, eager_model)
    assert_stats(step, captures=1, num_recompiles=0, eager_reason=None, graph_breaks=[])


def test_actor_critic_step_with_item_falls_back_to_eager_with_a_warning():
    eager_losses, eager_model, _ = _replay_run(ActorCriticPolicy, _ac_replay, False, 3e-2)
    with pytest.warns(UserWarning, match=r"Tensor.item\(\)"):
        comp_losses, comp_model, step = _replay_run(ActorCriticPolicy, _ac_replay, True, 3e-2)
    np.testing.assert_allclose(comp_losses, eager_losses, rtol=1e-6)
    st = step.stats()
    assert st["captures"] == 0 and "Tensor.item()" in st["eager_reason"]


def test_actor_critic_loss_gradcheck_float64():
    """Categorical.log_prob, the advantage and smooth_l1_loss against finite differences."""
    torch.manual_seed(0)
    model = ActorCriticPolicy().double()
    states = torch.rand(3, 4, dtype=torch.float64) * 2 - 1
    actions = torch.tensor([0, 1, 1])
    returns = torch.tensor([1.5, -0.2, 0.4], dtype=torch.float64)
    with torch.no_grad():  # value.item() in the script: a constant for the gradient
        advantage = returns - model(states)[1][:, 0]

    def loss_of(w_action, w_value):
        x = F.relu(model.affine1(states))
        probs = F.softmax(F.linear(x, w_action, model.action_head.bias), dim=-1)
        values = F.linear(x, w_value, model.value_head.bias)
        m = Categorical(probs)
        return (-m.log_prob(actions) * advantage).sum() + \
            F.smooth_l1_loss(values, returns.view(-1, 1), reduction="sum")

    w_a, w_v = grad_leaves(model.action_head.weight, model.value_head.weight)
    assert fw.autograd.gradcheck(loss_of, (w_a, w_v), eps=1e-6, atol=1e-5)


def test_policies_export_to_onnx(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    x = torch.from_numpy(_PROBE[:5])
    policy = Policy().eval()
    path = str(tmp_path / "reinforce.onnx")
    fw.onnx.export(policy, (x,), path, input_names=["state"], output_names=["probs"])
    (got,) = ort.InferenceSession(path).run(None, {"state": x.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(got, policy(x).numpy(), rtol=1e-5, atol=1e-6)
    model = ActorCriticPolicy().eval()
    path = str(tmp_path / "actor_critic.onnx")
    fw.onnx.export(model, (x,), path, input_names=["state"], output_names=["probs", "value"])
    got = ort.InferenceSession(path).run(None, {"state": x.numpy()})
    with torch.no_grad():
        want = model(x)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w.numpy(), rtol=1e-5, atol=1e-6)
