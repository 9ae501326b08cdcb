"""pytorch/tutorials ``beginner_source/knowledge_distillation_tutorial.py`` ported to ``fw``
with only the imports changed.

Kept: the teacher ``DeepNN`` / student ``LightNN`` and their ``Modified*Cosine`` /
``Modified*Regressor`` variants, ``train``, ``test``, ``train_knowledge_distillation`` (soft
targets at temperature ``T``, the hand-written KL term scaled by ``T**2``),
``train_cosine_loss`` (``nn.CosineEmbeddingLoss`` on hidden representations, the teacher's
``avg_pool1d`` over the flattened features), ``train_mse_loss`` (the conv regressor) and
``test_multiple_outputs``, loading the teacher's ``state_dict`` into the modified classes.

Replaced: CIFAR-10 by a few dozen synthetic 3x32x32 images of 4 classes (a coloured
stripe pattern, normalized with the tutorial's mean/std). The classes take their conv
widths as an argument (``ch``; the defaults are the tutorial's, which give its 2048 and
1024 flattened sizes) so the training tests run on narrow copies; the classifier's input
size is ``ch[-1] * 8 * 8`` (32x32 input, two 2x2 pools), the tutorial's number at those widths.
"""
# ruff: noqa: UP008  (the original's lines are kept as written)

import numpy as np
import pytest

import framework as fw
import framework.nn as nn
import framework.optim as optim

from ._checks import assert_compiled_matches_eager, assert_states_close, assert_stats

torch = fw  # the tutorial's ``torch.xxx`` calls read as ``fw.xxx``
device = torch.device("cpu")
TEACHER_CH, STUDENT_CH = (8, 8, 8, 8), (4, 4)  # narrow copies for the training tests


# Deeper neural network class to be used as teacher:
class DeepNN(nn.Module):
    def __init__(self, num_classes=10, ch=(128, 64, 64, 32)):
        super(DeepNN, self).__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, ch[0], kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(ch[0], ch[1], kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.Conv2d(ch[1], ch[2], kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(ch[2], ch[3], kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2),
        )
        self.classifier = nn.Sequential(
            nn.Linear(ch[3] * 8 * 8, 512),
            nn.ReLU(),
            nn.Dropout(0.1),
            nn.Linear(512, num_classes)
        )

    def forward(self, x):
        x = self.features(x)
        x = torch.flatten(x, 1)
        x = self.classifier(x)
        return x


# Lightweight neural network class to be used as student:
class LightNN(nn.Module):
    def __init__(self, num_classes=10, ch=(16, 16)):
        super(LightNN, self).__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, ch[0], kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.Conv2d(ch[0], ch[1], kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2),
        )
        self.classifier = nn.Sequential(
            nn.Linear(ch[1] * 8 * 8, 256),
            nn.ReLU(),
            nn.Dropout(0.1),
            nn.Linear(256, num_classes)
        )

    def forward(self, x):
        x = self.features(x)
        x = torch.flatten(x, 1)
        x = self.classifier(x)
        return x


class ModifiedDeepNNCosine(DeepNN):
    # the tutorial repeats DeepNN's __init__ verbatim; only forward differs
    def forward(self, x):
        x = self.features(x)
        flattened_conv_output = torch.flatten(x, 1)
        x = self.classifier(flattened_conv_output)
        flattened_conv_output_after_pooling = torch.nn.functional.avg_pool1d(flattened_conv_output, 2)
        return x, flattened_conv_output_after_pooling


class ModifiedLightNNCosine(LightNN):
    def forward(self, x):
        x = self.features(x)
        flattened_conv_output = torch.flatten(x, 1)
        x = self.classifier(flattened_conv_output)
        return x, flattened_conv_output


class ModifiedDeepNNRegressor(DeepNN):
    def forward(self, x):
        x = self.features(x)
        conv_feature_map = x
        x = torch.flatten(x, 1)
        x = self.classifier(x)
        return x, conv_feature_map


class ModifiedLightNNRegressor(LightNN):
    def __init__(self, num_classes=10, ch=(16, 16), teacher_ch=32):
        super(ModifiedLightNNRegressor, self).__init__(num_classes, ch)
        # Include an extra regressor (in our case linear)
        self.regressor = nn.Sequential(
            nn.Conv2d(ch[1], teacher_ch, kernel_size=3, padding=1)
        )

    def forward(self, x):
        x = self.features(x)
        regressor_output = self.regressor(x)
        x = torch.flatten(x, 1)
        x = self.classifier(x)
        return x, regressor_output


def train(model, train_loader, epochs, learning_rate, device):
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.Adam(model.parameters(), lr=learning_rate)

    model.train()
    history = []

    for epoch in range(epochs):
        running_loss = 0.0
        for inputs, labels in train_loader:
            inputs, labels = inputs.to(device), labels.to(device)

            optimizer.zero_grad()
            outputs = model(inputs)

            loss = criterion(outputs, labels)
            loss.backward()
            optimizer.step()

            running_loss += loss.item()

        print(f"Epoch {epoch+1}/{epochs}, Loss: {running_loss / len(train_loader)}")
        history.append(running_loss / len(train_loader))
    return history


def test(model, test_loader, device):
    model.to(device)
    model.eval()

    correct = 0
    total = 0

    with torch.no_grad():
        for inputs, labels in test_loader:
            inputs, labels = inputs.to(device), labels.to(device)

            outputs = model(inputs)
            _, predicted = torch.max(outputs.data, 1)

            total += labels.size(0)
            correct += (predicted == labels).sum().item()

    accuracy = 100 * correct / total
    print(f"Test Accuracy: {accuracy:.2f}%")
    return accuracy


test.__test__ = False  # the tutorial's name; not a pytest test


def kd_step(teacher, student, optimizer, ce_loss, inputs, labels, T, soft_target_loss_weight,
            ce_loss_weight):
    """The body of ``train_knowledge_distillation``'s inner loop, verbatim."""
    optimizer.zero_grad()

    # Forward pass with the teacher model - do not save gradients here as we do not change the teacher's weights
    with torch.no_grad():
        teacher_logits = teacher(inputs)

    # Forward pass with the student model
    student_logits = student(inputs)

    #Soften the student logits by applying softmax first and log() second
    soft_targets = nn.functional.softmax(teacher_logits / T, dim=-1)
    soft_prob = nn.functional.log_softmax(student_logits / T, dim=-1)

    # Calculate the soft targets loss. Scaled by T**2 as suggested by the authors of the paper "Distilling the knowledge in a neural network"
    soft_targets_loss = torch.sum(soft_targets * (soft_targets.log() - soft_prob)) / soft_prob.size()[0] * (T**2)

    # Calculate the true label loss
    label_loss = ce_loss(student_logits, labels)

    # Weighted sum of the two losses
    loss = soft_target_loss_weight * soft_targets_loss + ce_loss_weight * label_loss

    loss.backward()
    optimizer.step()
    return loss


def train_knowledge_distillation(teacher, student, train_loader, epochs, learning_rate, T, soft_target_loss_weight, ce_loss_weight, device, step=kd_step):
    ce_loss = nn.CrossEntropyLoss()
    optimizer = optim.Adam(student.parameters(), lr=learning_rate)

    teacher.eval()  # Teacher set to evaluation mode
    student.train() # Student to train mode
    history = []

    for epoch in range(epochs):
        running_loss = 0.0
        for inputs, labels in train_loader:
            inputs, labels = inputs.to(device), labels.to(device)
            loss = step(teacher, student, optimizer, ce_loss, inputs, labels, T,
                        soft_target_loss_weight, ce_loss_weight)
            running_loss += loss.item()

        print(f"Epoch {epoch+1}/{epochs}, Loss: {running_loss / len(train_loader)}")
        history.append(running_loss / len(train_loader))
    return history


def train_cosine_loss(teacher, student, train_loader, epochs, learning_rate, hidden_rep_loss_weight, ce_loss_weight, device):
    ce_loss = nn.CrossEntropyLoss()
    cosine_loss = nn.CosineEmbeddingLoss()
    optimizer = optim.Adam(student.parameters(), lr=learning_rate)

    teacher.to(device)
    student.to(device)
    teacher.eval()  # Teacher set to evaluation mode
    student.train() # Student to train mode
    history = []

    for epoch in range(epochs):
        running_loss = 0.0
        for inputs, labels in train_loader:
            inputs, labels = inputs.to(device), labels.to(device)

            optimizer.zero_grad()

            # Forward pass with the teacher model and keep only the hidden representation
            with torch.no_grad():
                _, teacher_hidden_representation = teacher(inputs)

            # Forward pass with the student model
            student_logits, student_hidden_representation = student(inputs)

            # Calculate the cosine loss. Target is a vector of ones. From the loss formula above we can see that is the case where loss minimization leads to cosine similarity increase.
            hidden_rep_loss = cosine_loss(student_hidden_representation, teacher_hidden_representation, target=torch.ones(inputs.size(0)).to(device))

            # Calculate the true label loss
            label_loss = ce_loss(student_logits, labels)

            # Weighted sum of the two losses
            loss = hidden_rep_loss_weight * hidden_rep_loss + ce_loss_weight * label_loss

            loss.backward()
            optimizer.step()

            running_loss += loss.item()

        print(f"Epoch {epoch+1}/{epochs}, Loss: {running_loss / len(train_loader)}")
        history.append(running_loss / len(train_loader))
    return history


def mse_step(teacher, student, optimizer, ce_loss, mse_loss, inputs, labels, feature_map_weight,
             ce_loss_weight):
    """The body of ``train_mse_loss``'s inner loop, verbatim."""
    optimizer.zero_grad()

    # Again ignore teacher logits
    with torch.no_grad():
        _, teacher_feature_map = teacher(inputs)

    # Forward pass with the student model
    student_logits, regressor_feature_map = student(inputs)

    # Calculate the loss
    hidden_rep_loss = mse_loss(regressor_feature_map, teacher_feature_map)

    # Calculate the true label loss
    label_loss = ce_loss(student_logits, labels)

    # Weighted sum of the two losses
    loss = feature_map_weight * hidden_rep_loss + ce_loss_weight * label_loss

    loss.backward()
    optimizer.step()
    return loss


def test_multiple_outputs(model, test_loader, device):
    model.to(device)
    model.eval()

    correct = 0
    total = 0

    with torch.no_grad():
        for inputs, labels in test_loader:
            inputs, labels = inputs.to(device), labels.to(device)

            outputs, _ = model(inputs) # Disregard the second tensor of the tuple
            _, predicted = torch.max(outputs.data, 1)

            total += labels.size(0)
            correct += (predicted == labels).sum().item()

    accuracy = 100 * correct / total
    print(f"Test Accuracy: {accuracy:.2f}%")
    return accuracy


test_multiple_outputs.__test__ = False


# -- synthetic CIFAR-shaped data (stands in for datasets.CIFAR10 + transforms) -------------
MEAN, STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


def _images(n, seed, num_classes=4):
    """Class k: stripes of orientation k % 2 in colour channel k // 2, on noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % num_classes
    yy, xx = np.mgrid[0:32, 0:32]
    x = rng.uniform(0, 0.4, (n, 3, 32, 32))
    for i, k in enumerate(labels):
        phase = rng.integers(0, 4)
        stripes = (((yy if k % 2 else xx) + phase) // 2) % 2
        x[i, k // 2] += 0.6 * stripes
    x = (x - MEAN[:, None, None]) / STD[:, None, None]  # transforms.Normalize
    return torch.tensor(x.astype(np.float32)), torch.tensor(labels.astype(np.int64))


def _loaders(n_train=48, n_test=16):
    train_dataset = torch.utils.data.TensorDataset(*_images(n_train, 0))
    test_dataset = torch.utils.data.TensorDataset(*_images(n_test, 1))
    train_loader = torch.utils.data.DataLoader(train_dataset, batch_size=16, shuffle=True,
                                               num_workers=0)
    test_loader = torch.utils.data.DataLoader(test_dataset, batch_size=16, shuffle=False,
                                              num_workers=0)
    return train_loader, test_loader


@pytest.fixture(scope="module")
def teacher():
    train_loader, test_loader = _loaders()
    torch.manual_seed(42)
    nn_deep = DeepNN(num_classes=4, ch=TEACHER_CH).to(device)
    history = train(nn_deep, train_loader, epochs=10, learning_rate=0.001, device=device)
    return nn_deep, history, test(nn_deep, test_loader, device)


def test_teacher_trains_with_cross_entropy(teacher):
    nn_deep, history, accuracy = teacher
    assert history[-1] < 0.6 * history[0], history
    assert accuracy >= 75, accuracy


def test_students_with_the_same_seed_start_identical():
    torch.manual_seed(42)
    nn_light = LightNN(num_classes=10).to(device)
    torch.manual_seed(42)
    new_nn_light = LightNN(num_classes=10).to(device)
    a = torch.norm(nn_light.features[0].weight).item()
    assert a == torch.norm(new_nn_light.features[0].weight).item()
    assert a == pytest.approx(np.linalg.norm(nn_light.features[0].weight.detach().numpy()))
    total_params_light = "{:,}".format(sum(p.numel() for p in nn_light.parameters()))
    total_params_deep = "{:,}".format(sum(p.numel() for p in DeepNN().parameters()))
    assert (total_params_deep, total_params_light) == ("1,186,986", "267,738")


def test_soft_target_loss_matches_numpy_and_kl_div():
    torch.manual_seed(0)
    t, s, T = torch.randn(5, 4) * 3, torch.randn(5, 4) * 3, 2
    soft_targets = nn.functional.softmax(t / T, dim=-1)
    soft_prob = nn.functional.log_softmax(s / T, dim=-1)
    got = torch.sum(soft_targets * (soft_targets.log() - soft_prob)) / soft_prob.size()[0] * (T**2)
    tn, sn = t.numpy().astype(np.float64) / T, s.numpy().astype(np.float64) / T
    p = np.exp(tn - tn.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    logq = sn - sn.max(1, keepdims=True)
    logq -= np.log(np.exp(logq).sum(1, keepdims=True))
    want = (p * (np.log(p) - logq)).sum() / 5 * T**2
    assert got.item() == pytest.approx(want, rel=1e-5)
    kl = nn.functional.kl_div(soft_prob, soft_targets, reduction="batchmean") * T**2
    assert kl.item() == pytest.approx(want, rel=1e-5)


def test_cosine_embedding_loss_and_avg_pool1d_match_numpy():
    torch.manual_seed(0)
    a, b = torch.randn(6, 8), torch.randn(6, 8)
    y = torch.tensor([1., -1., 1., -1., 1., -1.])
    an, bn = a.numpy().astype(np.float64), b.numpy().astype(np.float64)
    cos = (an * bn).sum(1) / np.sqrt((an ** 2).sum(1) * (bn ** 2).sum(1))
    for margin in (0.0, 0.3):
        per = np.where(y.numpy() > 0, 1 - cos, np.maximum(0, cos - margin))
        loss = nn.CosineEmbeddingLoss(margin=margin)
        assert loss(a, b, target=y).item() == pytest.approx(per.mean(), rel=1e-5)
        got = nn.CosineEmbeddingLoss(margin=margin, reduction="none")(a, b, y)
        np.testing.assert_allclose(got.numpy(), per, rtol=1e-5, atol=1e-6)
    pooled = torch.nn.functional.avg_pool1d(a, 2)  # (N, L) read as unbatched (C, L)
    np.testing.assert_allclose(pooled.numpy(), an.reshape(6, 4, 2).mean(2), rtol=1e-6)


def test_distillation_cosine_and_regressor_runs_lower_their_losses(teacher):
    nn_deep, _, _ = teacher
    teacher_before = [p.detach().numpy().copy() for p in nn_deep.parameters()]
    train_loader, test_loader = _loaders()
    torch.manual_seed(42)
    new_nn_light = LightNN(num_classes=4, ch=STUDENT_CH).to(device)
    kd = train_knowledge_distillation(teacher=nn_deep, student=new_nn_light,
                                      train_loader=train_loader, epochs=6, learning_rate=0.001,
                                      T=2, soft_target_loss_weight=0.25, ce_loss_weight=0.75,
                                      device=device)
    assert kd[-1] < 0.8 * kd[0], kd
    assert not nn_deep.training and new_nn_light.training
    for p, before in zip(nn_deep.parameters(), teacher_before):  # the teacher never learns
        np.testing.assert_array_equal(p.detach().numpy(), before)

    # We do not have to train the modified deep network from scratch of course, we just load its weights from the trained instance
    modified_nn_deep = ModifiedDeepNNCosine(num_classes=4, ch=TEACHER_CH).to(device)
    modified_nn_deep.load_state_dict(nn_deep.state_dict())
    assert torch.norm(nn_deep.features[0].weight).item() == \
        torch.norm(modified_nn_deep.features[0].weight).item()
    torch.manual_seed(42)
    modified_nn_light = ModifiedLightNNCosine(num_classes=4, ch=STUDENT_CH).to(device)
    sample_input = torch.randn(8, 3, 32, 32).to(device)
    logits, hidden_representation = modified_nn_light(sample_input)
    t_logits, t_hidden = modified_nn_deep(sample_input)
    assert hidden_representation.shape == t_hidden.shape == (8, 256)  # 512 pooled by 2
    cos = train_cosine_loss(teacher=modified_nn_deep, student=modified_nn_light,
                            train_loader=train_loader, epochs=6, learning_rate=0.001,
                            hidden_rep_loss_weight=0.25, ce_loss_weight=0.75, device=device)
    assert cos[-1] < 0.8 * cos[0], cos
    assert test_multiple_outputs(modified_nn_light, test_loader, device) >= 50

    torch.manual_seed(42)
    modified_nn_light_reg = ModifiedLightNNRegressor(num_classes=4, ch=STUDENT_CH,
                                                     teacher_ch=TEACHER_CH[3]).to(device)
    modified_nn_deep_reg = ModifiedDeepNNRegressor(num_classes=4, ch=TEACHER_CH).to(device)
    modified_nn_deep_reg.load_state_dict(nn_deep.state_dict())
    modified_nn_deep_reg.eval()
    modified_nn_light_reg.train()
    optimizer = optim.Adam(modified_nn_light_reg.parameters(), lr=0.001)
    losses = [mse_step(modified_nn_deep_reg, modified_nn_light_reg, optimizer,
                       nn.CrossEntropyLoss(), nn.MSELoss(), inputs, labels, 0.25, 0.75).item()
              for _ in range(6) for inputs, labels in train_loader]
    assert np.mean(losses[-3:]) < 0.85 * np.mean(losses[:3]), losses


def _kd_run(teacher_state, compiled):
    torch.manual_seed(0)
    t = DeepNN(num_classes=4, ch=TEACHER_CH)
    t.load_state_dict(teacher_state)
    s = LightNN(num_classes=4, ch=STUDENT_CH)
    step = fw.compile(kd_step, mode="always") if compiled else kd_step
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(*_images(32, 0)),
                                         batch_size=16, shuffle=False)
    torch.manual_seed(7)  # the student's dropout masks, the same stream for both runs
    hist = train_knowledge_distillation(t, s, loader, epochs=2, learning_rate=0.001, T=2,
                                        soft_target_loss_weight=0.25, ce_loss_weight=0.75,
                                        device=device, step=step)
    return hist, [p.detach().numpy().copy() for p in s.parameters()], step


def test_compiled_distillation_step_matches_eager_and_compiles_once(teacher):
    state = teacher[0].state_dict()
    assert_compiled_matches_eager(lambda compiled: _kd_run(state, compiled), eager_reason=None,
                                  captures=1, num_recompiles=0, min_cache_hits=2)


def test_compiled_regressor_step_matches_eager():
    results = []
    for compiled in (False, True):
        torch.manual_seed(1)
        t = ModifiedDeepNNRegressor(num_classes=4, ch=TEACHER_CH).eval()
        s = ModifiedLightNNRegressor(num_classes=4, ch=STUDENT_CH, teacher_ch=TEACHER_CH[3])
        s.eval()  # no dropout: the comparison needs no shared random stream
        opt = optim.Adam(s.parameters(), lr=0.001)
        step = fw.compile(mse_step, mode="always") if compiled else mse_step
        x, y = _images(8, 3)
        ce_loss, mse_loss = nn.CrossEntropyLoss(), nn.MSELoss()
        losses = [step(t, s, opt, ce_loss, mse_loss, x, y, 0.25, 0.75).item()
                  for _ in range(3)]
        results.append((losses, [p.detach().numpy().copy() for p in s.parameters()], step))
    (le, pe, _), (lc, pc, step) = results
    np.testing.assert_allclose(lc, le, rtol=1e-4, atol=1e-5)
    assert_states_close(pc, pe)
    assert_stats(step, num_recompiles=0)


def test_distillation_losses_gradcheck_float64():
    """The KD term, CosineEmbeddingLoss (both targets) and avg_pool1d against finite
    differences, through the student's logits and hidden representation."""
    torch.manual_seed(0)
    t_logits = torch.randn(3, 4, dtype=torch.float64)
    t_hidden = torch.randn(3, 8, dtype=torch.float64)
    y = torch.tensor([1., -1., 1.], dtype=torch.float64)
    T = 2

    def f(s_logits, s_hidden):
        soft_targets = nn.functional.softmax(t_logits / T, dim=-1)
        soft_prob = nn.functional.log_softmax(s_logits / T, dim=-1)
        kd = torch.sum(soft_targets * (soft_targets.log() - soft_prob)) / soft_prob.size()[0] * (T**2)
        pooled = torch.nn.functional.avg_pool1d(s_hidden, 2)
        cos = nn.CosineEmbeddingLoss(margin=0.1)(pooled, t_hidden[:, :4], y)
        return kd + cos

    s_logits = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    s_hidden = torch.randn(3, 8, dtype=torch.float64, requires_grad=True)
    assert fw.autograd.gradcheck(f, (s_logits, s_hidden), eps=1e-6, atol=1e-6)


def test_full_size_teacher_exports_with_both_outputs(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    model = ModifiedDeepNNCosine(num_classes=10).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        logits, hidden = model(x)
    assert logits.shape == (2, 10) and hidden.shape == (2, 1024)  # 2048 pooled by 2
    path = str(tmp_path / "teacher.onnx")
    fw.onnx.export(model, x, path, input_names=["x"], output_names=["logits", "hidden"],
                   dynamic_axes={"x": {0: "batch"}})
    got = ort.InferenceSession(path).run(None, {"x": x.numpy()})
    np.testing.assert_allclose(got[0], logits.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got[1], hidden.numpy(), rtol=1e-4, atol=1e-5)
