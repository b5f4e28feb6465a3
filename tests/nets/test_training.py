"""The shared training loop: exact resumption, the stop signal, foreign checkpoints,
best weights, early stopping, learning rates, the caller's global generator and a silent
progress bar."""

from __future__ import annotations

import signal

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from clapkit.errors import FileFormatError, ValidationError
from clapkit.nets.checkpoint import CheckpointFile, TrainingState
from clapkit.nets.training import Epoch, TrainingStopped, seed_epoch, train_epochs
from clapkit.stopping import clear_stop, request_stop

EPOCHS = 4


class ToyGAN:
    """A generator and a critic with one optimiser each, stepped in turn as a GAN is;
    its epoch draws from every source of randomness the loop hands out, and dropout."""

    def __init__(self, signal_at: dict[int, int] | None = None) -> None:
        torch.manual_seed(0)
        self.generator = nn.Sequential(nn.Linear(2, 8), nn.Dropout(0.3), nn.Linear(8, 2))
        self.critic = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1))
        self.optimizers = {
            "generator": torch.optim.Adam(self.generator.parameters(), lr=1e-2),
            "critic": torch.optim.SGD(self.critic.parameters(), lr=5e-2),
        }
        self.data = torch.randn(64, 2) * 0.5 + 1.0
        # {epoch: signal}: raised in the middle of that epoch, as a user or scheduler would.
        self.signal_at = signal_at or {}

    @property
    def modules(self) -> dict[str, nn.Module]:
        return {"generator": self.generator, "critic": self.critic}

    def run_epoch(self, epoch: Epoch) -> dict[str, float]:
        order = torch.from_numpy(epoch.rng.permutation(len(self.data)))
        self.generator.train()
        for start in range(0, len(order), 16):
            if start == 16 and epoch.index in self.signal_at:
                signal.raise_signal(self.signal_at[epoch.index])
            real = self.data[order[start : start + 16]]
            fake = self.generator(torch.randn(real.shape, generator=epoch.generator))
            critic_loss = self.critic(fake.detach()).mean() - self.critic(real).mean()
            self.optimizers["critic"].zero_grad()
            critic_loss.backward()
            self.optimizers["critic"].step()
            generator_loss = -self.critic(fake).mean()
            self.optimizers["generator"].zero_grad()
            generator_loss.backward()
            self.optimizers["generator"].step()
        with torch.no_grad():
            valid_loss = F.mse_loss(self.generator.eval()(self.data), self.data).item()
        return {"critic": critic_loss.item(), "valid_loss": valid_loss}

    def train(self, checkpoint: CheckpointFile | None = None, **kwargs) -> list[dict]:
        return train_epochs(
            self.run_epoch,
            self.modules,
            self.optimizers,
            epochs=kwargs.pop("epochs", EPOCHS),
            seed=7,
            checkpoint=checkpoint,
            **kwargs,
        )


def assert_same_weights(a: ToyGAN, b: ToyGAN) -> None:
    for name in a.modules:
        for x, y in zip(
            a.modules[name].state_dict().values(),
            b.modules[name].state_dict().values(),
            strict=True,
        ):
            torch.testing.assert_close(x, y, rtol=0, atol=0)


def checkpoint_at(tmp_path, identity: str = '{"toy": 1}', **kwargs) -> CheckpointFile:
    return CheckpointFile(tmp_path / "toy.ckpt", identity, what="toy config", **kwargs)


def test_a_run_stopped_and_resumed_ends_with_the_weights_of_an_uninterrupted_one(tmp_path):
    straight = ToyGAN()
    history = straight.train()
    assert [r["epoch"] for r in history] == list(range(EPOCHS))

    checkpoint = checkpoint_at(tmp_path)
    with pytest.raises(TrainingStopped, match="after epoch 1"):
        ToyGAN().train(checkpoint, stop_after=2)
    assert checkpoint.read().epoch == 1
    resumed = ToyGAN()
    resumed_history = resumed.train(checkpoint)
    assert_same_weights(straight, resumed)
    assert resumed_history == history
    for name, optimizer in straight.optimizers.items():  # the optimisers' state too
        torch.testing.assert_close(
            optimizer.state_dict()["state"], resumed.optimizers[name].state_dict()["state"]
        )


def test_a_different_seed_gives_different_weights():
    # The check above is not vacuous: the seed does reach the weights.
    a, b = ToyGAN(), ToyGAN()
    a.train()
    train_epochs(b.run_epoch, b.modules, b.optimizers, epochs=EPOCHS, seed=8)
    assert not torch.equal(a.generator[0].weight, b.generator[0].weight)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_ends_the_epoch_writes_the_checkpoint_and_stops(tmp_path, signum, capfd):
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    checkpoint = checkpoint_at(tmp_path)
    with pytest.raises(TrainingStopped, match=r"toy\.ckpt resumes it"):
        ToyGAN(signal_at={1: signum}).train(checkpoint)
    assert "finishing this epoch, writing its checkpoint" in capfd.readouterr().err
    # The signalled epoch was finished and saved, and nothing after it ran.
    state = checkpoint.read()
    assert state.epoch == 1 and [r["epoch"] for r in state.history] == [0, 1]
    assert {sig: signal.getsignal(sig) for sig in before} == before  # handlers given back
    resumed = ToyGAN()
    resumed.train(checkpoint)
    straight = ToyGAN()
    straight.train()
    assert_same_weights(straight, resumed)


def test_an_ignored_signal_stays_ignored(tmp_path):
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        history = ToyGAN(signal_at={1: signal.SIGTERM}).train(checkpoint_at(tmp_path))
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert len(history) == EPOCHS


def test_a_second_signal_stops_at_once_and_the_previous_checkpoint_stands(tmp_path):
    class SignalTwice(ToyGAN):
        def run_epoch(self, epoch):
            if epoch.index == 2:
                signal.raise_signal(signal.SIGTERM)
                signal.raise_signal(signal.SIGTERM)
            return super().run_epoch(epoch)

    checkpoint = checkpoint_at(tmp_path)
    with pytest.raises(KeyboardInterrupt) as stopped:
        SignalTwice().train(checkpoint)
    assert not isinstance(stopped.value, TrainingStopped)
    assert checkpoint.read().epoch == 1


def test_a_signal_in_the_last_epoch_lets_the_training_finish(tmp_path):
    history = ToyGAN(signal_at={EPOCHS - 1: signal.SIGTERM}).train(checkpoint_at(tmp_path))
    assert len(history) == EPOCHS


def test_corrupt_foreign_and_mismatched_checkpoints_are_refused_by_name(tmp_path):
    checkpoint = checkpoint_at(tmp_path)
    with pytest.raises(TrainingStopped):
        ToyGAN().train(checkpoint, stop_after=1)

    with pytest.raises(ValidationError, match=r"toy\.ckpt: checkpoint of a different toy config"):
        ToyGAN().train(checkpoint_at(tmp_path, '{"toy": 2}'))
    # With replace_foreign (--overwrite) it starts again, and the checkpoint is replaced.
    history = ToyGAN().train(checkpoint_at(tmp_path, '{"toy": 2}', replace_foreign=True))
    assert len(history) == EPOCHS and checkpoint_at(tmp_path, '{"toy": 2}').read() is not None

    # A checkpoint of the loop this one replaced (no format tag) or of another program.
    torch.save({"model": {}, "epoch": 0, "config": "{}"}, checkpoint.path)
    with pytest.raises(FileFormatError, match="older clapkit; remove it"):
        ToyGAN().train(checkpoint)
    checkpoint.path.write_bytes(b"not a checkpoint")
    with pytest.raises(FileFormatError, match=r"toy\.ckpt: not a readable checkpoint"):
        ToyGAN().train(checkpoint)


def test_a_checkpoint_of_other_modules_is_refused(tmp_path):
    checkpoint = checkpoint_at(tmp_path)
    with pytest.raises(TrainingStopped):
        ToyGAN().train(checkpoint, stop_after=1)
    net = nn.Linear(2, 2)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    with pytest.raises(FileFormatError, match="checkpoint of modules"):
        train_epochs(
            lambda e: {}, {"net": net}, {"sgd": optimizer}, epochs=2, seed=0, checkpoint=checkpoint
        )
    # Same names, other shapes.
    state = checkpoint.read()
    state.modules["generator"] = nn.Linear(3, 3).state_dict()
    checkpoint.write(state)
    with pytest.raises(FileFormatError, match="does not fit this network"):
        ToyGAN().train(checkpoint)


def test_the_best_epoch_is_kept_and_survives_a_resumption(tmp_path):
    def train_keeping_best(**kwargs) -> tuple[ToyGAN, list[dict], dict[int, torch.Tensor]]:
        toy = ToyGAN()
        weights = {}  # generator weights at the end of every epoch of this call
        run_epoch = toy.run_epoch

        def scored(epoch):
            record = run_epoch(epoch)
            weights[epoch.index] = toy.generator[0].weight.detach().clone()
            return {**record, "score": (epoch.index - 1) ** 2}  # lowest after epoch 1

        toy.run_epoch = scored
        history = toy.train(keep_best="score", **kwargs)
        return toy, history, weights

    toy, history, weights = train_keeping_best()
    assert torch.equal(toy.generator[0].weight, weights[1])
    assert not torch.equal(weights[1], weights[EPOCHS - 1])

    # Stopped after epoch 2, the best (epoch 1) comes back from the checkpoint.
    checkpoint = checkpoint_at(tmp_path)
    with pytest.raises(TrainingStopped):
        train_keeping_best(checkpoint=checkpoint, stop_after=3)
    resumed, resumed_history, resumed_weights = train_keeping_best(checkpoint=checkpoint)
    assert 1 not in resumed_weights
    assert resumed_history == history
    torch.testing.assert_close(resumed.generator[0].weight, weights[1], rtol=0, atol=0)


def scored_by(scores: list[float]) -> tuple[ToyGAN, dict[int, torch.Tensor]]:
    """A ToyGAN whose epoch ``e`` scores ``scores[e]``; ``weights`` collects the generator's
    weights at the end of every epoch run."""
    toy = ToyGAN()
    weights: dict[int, torch.Tensor] = {}
    run_epoch = toy.run_epoch

    def scored(epoch):
        record = run_epoch(epoch)
        weights[epoch.index] = toy.generator[0].weight.detach().clone()
        return {**record, "score": scores[epoch.index]}

    toy.run_epoch = scored
    return toy, weights


# lowest at epoch 2; epoch 4 only ties it, which is no improvement
PATIENCE_SCORES = [5.0, 3.0, 1.0, 2.0, 1.0, 4.0, 0.5, 0.1, 0.1, 0.1]


def test_patience_ends_the_training_early_with_the_best_weights(tmp_path):
    toy, weights = scored_by(PATIENCE_SCORES)
    history = toy.train(keep_best="score", patience=3, epochs=len(PATIENCE_SCORES))
    assert [r["epoch"] for r in history] == [0, 1, 2, 3, 4, 5]  # 3 epochs after the best
    assert torch.equal(toy.generator[0].weight, weights[2])
    # Without patience the same training runs on and finds the later, lower scores.
    toy, weights = scored_by(PATIENCE_SCORES)
    assert len(toy.train(keep_best="score", epochs=len(PATIENCE_SCORES))) == 10
    assert torch.equal(toy.generator[0].weight, weights[7])


def test_patience_counts_the_epochs_of_a_resumed_run(tmp_path):
    straight, _ = scored_by(PATIENCE_SCORES)
    history = straight.train(keep_best="score", patience=3, epochs=len(PATIENCE_SCORES))
    checkpoint = checkpoint_at(tmp_path)
    settings = {"keep_best": "score", "patience": 3, "epochs": len(PATIENCE_SCORES)}
    with pytest.raises(TrainingStopped, match="after epoch 3"):
        scored_by(PATIENCE_SCORES)[0].train(checkpoint, stop_after=4, **settings)
    # two epochs without improvement are in the checkpoint: one more ends the training
    resumed, weights = scored_by(PATIENCE_SCORES)
    assert resumed.train(checkpoint, **settings) == history
    assert sorted(weights) == [4, 5]
    assert_same_weights(straight, resumed)
    # called again on a checkpoint that already ran out of patience: nothing to do
    again, weights = scored_by(PATIENCE_SCORES)
    assert again.train(checkpoint, **settings) == history and weights == {}
    assert_same_weights(straight, again)


def test_patience_needs_a_score_and_a_whole_number():
    toy = ToyGAN()
    with pytest.raises(ValidationError, match="patience needs keep_best"):
        toy.train(patience=2)
    for bad in (0, 2.5, True):
        with pytest.raises(ValidationError, match=r"patience must be an integer >= 1, got"):
            toy.train(keep_best="valid_loss", patience=bad)


def test_the_callers_global_generator_is_left_as_it_was():
    # every epoch reseeds torch's global generator (dropout); the caller's draws after
    # training continue as if no training had run
    class Failing(ToyGAN):
        def run_epoch(self, epoch):
            if epoch.index == 1:
                raise RuntimeError("out of memory")
            return super().run_epoch(epoch)

    toy, failing = ToyGAN(), Failing()  # (their constructors seed the global generator)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    toy.train()
    assert torch.equal(torch.get_rng_state(), before)
    with pytest.raises(RuntimeError, match="out of memory"):
        failing.train()
    assert torch.equal(torch.get_rng_state(), before)


def test_a_recorded_stop_request_ends_the_training_after_the_epoch():
    # the clapkit command records every Ctrl-C/SIGTERM in clapkit.stopping, in case the
    # KeyboardInterrupt it raised was lost (in a __del__); the loop stops on it, too
    class RequestAtOne(ToyGAN):
        def run_epoch(self, epoch):
            if epoch.index == 1:
                request_stop()
            return super().run_epoch(epoch)

    try:
        with pytest.raises(TrainingStopped, match=r"stopped after epoch 1$"):
            RequestAtOne().train()
    finally:
        clear_stop()


def test_each_optimiser_group_follows_the_schedule_from_its_own_rate():
    toy = ToyGAN()
    seen = []

    def run_epoch(epoch):
        seen.append({n: o.param_groups[0]["lr"] for n, o in toy.optimizers.items()})
        return {}

    train_epochs(
        run_epoch, toy.modules, toy.optimizers, epochs=3, seed=0, lr_scale=lambda e: 1 / (e + 1)
    )
    assert seen == [
        {"generator": pytest.approx(1e-2 / (e + 1)), "critic": pytest.approx(5e-2 / (e + 1))}
        for e in range(3)
    ]


def test_progress_is_shown_on_request_and_silent_otherwise(capsys):
    ToyGAN().train(epochs=2, description="toy gan")
    assert capsys.readouterr().err == ""
    ToyGAN().train(epochs=2, description="toy gan", progress=True)
    assert "toy gan" in capsys.readouterr().err


def test_epoch_randomness_depends_on_seed_and_epoch_only():
    a, b, c = seed_epoch(1, 2), seed_epoch(1, 2), seed_epoch(1, 3)
    assert list(a.rng.permutation(10)) == list(b.rng.permutation(10))
    assert list(a.rng.permutation(10)) != list(c.rng.permutation(10))
    with pytest.raises(ValidationError, match="epochs must be an integer >= 1, got 0"):
        train_epochs(lambda e: {}, {}, {}, epochs=0, seed=0)
    with pytest.raises(ValidationError, match=r"epochs must be an integer >= 1, got 2\.5"):
        train_epochs(lambda e: {}, {}, {}, epochs=2.5, seed=0)


def test_a_checkpoint_round_trips(tmp_path):
    state = TrainingState(
        epoch=3,
        modules={"net": nn.Linear(2, 1).state_dict()},
        optimizers={},
        history=[{"epoch": 0, "loss": 1.5}],
        best_score=0.25,
    )
    checkpoint = checkpoint_at(tmp_path)
    checkpoint.write(state)
    back = checkpoint.read()
    assert (back.epoch, back.history, back.best_score) == (3, state.history, 0.25)
    torch.testing.assert_close(back.modules, state.modules)
    checkpoint.remove()
    assert not checkpoint.exists() and checkpoint.read() is None
