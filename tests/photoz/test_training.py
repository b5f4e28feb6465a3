"""The shared training loop: it learns, it resumes exactly, and it refuses foreign state."""

from __future__ import annotations

import itertools
import signal

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from clapkit.errors import FileFormatError, ValidationError
from clapkit.nets.training import TrainingStopped
from clapkit.photoz.training import (
    TensorData,
    TrainConfig,
    fit,
    load_state,
    predict_logits,
    save_state,
)


class Classifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 4))

    def forward(self, x, extra):
        return self.layers(torch.cat([x, extra], dim=1))


def step(net, batch, generator):
    x, extra, target = batch
    x = x + 0.01 * torch.randn(x.shape, generator=generator)  # uses the epoch generator
    loss = F.cross_entropy(net(x, extra), target)
    return loss, {"cross_entropy": loss.item()}


def score(net, batch):
    x, extra, target = batch
    return float(F.cross_entropy(net(x, extra), target, reduction="sum"))


def toy_data(n: int, seed: int) -> TensorData:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2)).astype(np.float32)
    extra = rng.normal(size=(n, 1)).astype(np.float32)
    target = (x[:, 0] > 0).astype(np.int64) * 2 + (x[:, 1] > 0)
    return TensorData(torch.from_numpy(x), torch.from_numpy(extra), torch.from_numpy(target))


def fresh_net() -> Classifier:
    torch.manual_seed(0)
    return Classifier()


CONFIG = TrainConfig(epochs=4, batch_size=32, learning_rate=1e-2, seed=3)


def test_training_lowers_the_validation_loss():
    net = fresh_net()
    train, valid = toy_data(400, 0), toy_data(200, 1)
    with torch.no_grad():
        before = sum(score(net, b) for b in valid.batches(100)) / len(valid)
    history = fit(net, step, score, train, valid, CONFIG)
    assert len(history) == CONFIG.epochs
    assert min(h["valid_loss"] for h in history) < 0.5 * before
    assert not net.training  # left in evaluation mode


def test_a_killed_run_resumes_to_the_same_weights(tmp_path):
    train, valid = toy_data(300, 0), toy_data(100, 1)
    straight = fresh_net()
    fit(straight, step, score, train, valid, CONFIG)

    checkpoint = tmp_path / "net.ckpt"
    resumed = fresh_net()
    with pytest.raises(TrainingStopped):
        fit(resumed, step, score, train, valid, CONFIG, checkpoint=checkpoint, stop_after=2)
    assert checkpoint.exists()
    history = fit(
        fresh_net_like := fresh_net(), step, score, train, valid, CONFIG, checkpoint=checkpoint
    )
    assert [h["epoch"] for h in history] == [0, 1, 2, 3]
    for a, b in zip(
        straight.state_dict().values(), fresh_net_like.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(a, b)
    assert not checkpoint.exists()  # removed once training ends


def test_a_stop_signal_checkpoints_and_the_run_resumes_to_the_same_weights(tmp_path):
    train, valid = toy_data(300, 0), toy_data(100, 1)
    straight = fresh_net()
    fit(straight, step, score, train, valid, CONFIG)

    steps: list[int] = []

    def signalled_step(net, batch, generator):
        steps.append(1)
        if len(steps) == 15:  # 300 galaxies in batches of 32: epoch 1 (steps 11 to 20)
            signal.raise_signal(signal.SIGINT)
        return step(net, batch, generator)

    checkpoint = tmp_path / "net.ckpt"
    with pytest.raises(TrainingStopped, match="after epoch 1"):
        fit(fresh_net(), signalled_step, score, train, valid, CONFIG, checkpoint=checkpoint)
    assert checkpoint.exists()
    resumed = fresh_net()
    history = fit(resumed, step, score, train, valid, CONFIG, checkpoint=checkpoint)
    assert [h["epoch"] for h in history] == [0, 1, 2, 3]
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)


def test_a_checkpoint_of_another_config_is_refused(tmp_path):
    train = toy_data(100, 0)
    checkpoint = tmp_path / "net.ckpt"
    with pytest.raises(TrainingStopped):
        fit(fresh_net(), step, score, train, None, CONFIG, checkpoint=checkpoint, stop_after=1)
    other = TrainConfig(epochs=4, batch_size=16, learning_rate=1e-2, seed=3)
    with pytest.raises(ValidationError, match="different training config"):
        fit(fresh_net(), step, score, train, None, other, checkpoint=checkpoint)
    checkpoint.write_bytes(b"not a checkpoint")
    with pytest.raises(FileFormatError, match="not a readable checkpoint"):
        fit(fresh_net(), step, score, train, None, CONFIG, checkpoint=checkpoint)


def test_learning_rate_warms_up_then_decays():
    config = TrainConfig(epochs=10, learning_rate=1.0, warmup_epochs=1)
    rates = [config.lr(e) for e in range(10)]
    assert rates[0] < rates[1] == pytest.approx(1.0)
    assert all(a >= b for a, b in itertools.pairwise(rates[1:]))
    assert rates[-1] >= 0.05


def test_bad_configs_and_empty_data_are_refused():
    with pytest.raises(ValidationError, match="unknown training options"):
        TrainConfig.from_dict({"epoch": 3})
    with pytest.raises(ValidationError, match="epochs must be an integer >= 1, got 0"):
        TrainConfig(epochs=0)
    with pytest.raises(ValidationError, match=r"epochs must be an integer >= 1, got 2\.5"):
        TrainConfig(epochs=2.5)
    with pytest.raises(ValidationError, match="batch_size must be an integer >= 1, got True"):
        TrainConfig(batch_size=True)
    with pytest.raises(ValidationError, match="warmup_epochs must be an integer >= 0, got -1"):
        TrainConfig(warmup_epochs=-1)
    with pytest.raises(ValidationError, match="seed must be an integer >= 0, got -3"):
        TrainConfig.from_dict({"seed": -3})
    assert TrainConfig(epochs=np.int64(3)).epochs == 3  # a plain int, for the JSON identity
    assert type(TrainConfig(epochs=np.int64(3)).epochs) is int
    empty = toy_data(0, 0)
    with pytest.raises(ValidationError, match="training split is empty"):
        fit(fresh_net(), step, score, empty, None, CONFIG)
    with pytest.raises(ValidationError, match="differ in length"):
        TensorData(torch.zeros(3, 2), torch.zeros(2, 1), torch.zeros(3))


def test_weights_round_trip_and_mismatches_are_named(tmp_path):
    net = fresh_net()
    path = save_state(tmp_path / "net.pt", net)
    other = load_state(path, Classifier())
    x, extra = torch.zeros(5, 2), torch.zeros(5, 1)
    torch.testing.assert_close(
        predict_logits(net.eval(), x, extra, 2), predict_logits(other, x, extra, 2)
    )
    with pytest.raises(FileFormatError, match="do not fit"):
        load_state(path, nn.Linear(2, 2))
    with pytest.raises(FileFormatError, match="missing model weights"):
        load_state(tmp_path / "absent.pt", net)


def test_an_explicit_device_trains_the_same_weights_and_returns_the_net_on_the_cpu():
    train, valid = toy_data(300, 0), toy_data(100, 1)
    in_place, moved = fresh_net(), fresh_net()
    fit(in_place, step, score, train, valid, CONFIG)
    history = fit(moved, step, score, train, valid, CONFIG, device="cpu")
    assert len(history) == CONFIG.epochs
    assert all(p.device.type == "cpu" for p in moved.parameters())
    for a, b in zip(in_place.state_dict().values(), moved.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)
    with pytest.raises(ValidationError, match="unknown device"):
        fit(fresh_net(), step, score, train, valid, CONFIG, device="gpu")
