"""The SwinIR-style translator: windows, attention, shapes, validation and learning."""

import pytest
import torch
import torch.nn.functional as F

from clapkit.errors import ValidationError
from clapkit.translate.models.base import TranslationBatch
from clapkit.translate.models.swin import (
    SwinConfig,
    SwinLayer,
    SwinTranslator,
    WindowAttention,
    WindowGrid,
    _window_partition,
)

BANDS = 5


def _model(size: int = 16, seed: int = 0, **overrides) -> SwinTranslator:
    torch.manual_seed(seed)
    return SwinTranslator(SwinConfig.preset("tiny", **overrides), n_bands=BANDS, size=size)


def _translate(model: SwinTranslator, x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model.translate(x, torch.Generator().manual_seed(seed))


def _batch(source: torch.Tensor, target: torch.Tensor) -> TranslationBatch:
    return TranslationBatch(source, target, source[:0], target[:0])


# --- windows and attention --------------------------------------------------------------


def test_shifted_partition_matches_swin_roll_then_partition():
    x = torch.randn(2, 8, 8, 3)  # (B, H, W, C)
    grid = WindowGrid(side=8, window=4, shift=2)
    ours = grid.partition(x.flatten(1, 2))
    reference = _window_partition(torch.roll(x, shifts=(-2, -2), dims=(1, 2)), 4)
    torch.testing.assert_close(ours, reference, rtol=0, atol=0)
    torch.testing.assert_close(grid.reverse(ours), x.flatten(1, 2), rtol=0, atol=0)


def test_window_attention_equals_explicit_softmax_with_bias_and_mask():
    torch.manual_seed(0)
    attn = WindowAttention(dim=8, num_heads=2, window=4)
    with torch.no_grad():
        attn.relative_position_bias_table.normal_()  # make the bias matter
    grid = WindowGrid(side=8, window=4, shift=2)
    x = torch.randn(3, 4, 16, 8)  # (B, nW, N, C)
    out = attn(x, grid.mask)

    q, k, v = attn.qkv(x).view(3, 4, 16, 3, 2, 4).permute(3, 0, 1, 4, 2, 5)  # (B, nW, h, N, d)
    scores = q @ k.transpose(-2, -1) / 2.0 + attn.bias() + grid.mask[:, None]
    expected = (scores.softmax(-1) @ v).transpose(2, 3).reshape(3, 4, 16, 8)
    torch.testing.assert_close(out, attn.proj(expected), rtol=1e-5, atol=1e-5)


def test_shifted_window_mask_separates_wrapped_regions():
    torch.manual_seed(0)
    layer = SwinLayer(8, num_heads=2, windows=WindowGrid(8, 4, shift=2), mlp_ratio=2.0)
    with torch.no_grad():  # weights of order one, so that attention moves tokens visibly
        layer.attn.qkv.weight.normal_(std=0.3)
        layer.attn.proj.weight.normal_(std=0.3)
    x = torch.randn(1, 8, 8, 8)  # (B, H, W, C)
    moved = x.clone()
    moved[0, 0, 0] += torch.randn(8)  # the top-left token (not a constant: LayerNorm)
    delta = (layer(moved.flatten(1, 2)) - layer(x.flatten(1, 2))).view(8, 8, 8).abs()
    # (7, 7) shares the shifted corner window with (0, 0) but lies across the wrap: masked.
    assert delta[7, 7].max() < 1e-6
    # (1, 1) is in (0, 0)'s region of that window, so it attends to it.
    assert delta[1, 1].max() > 1e-3


def test_relative_position_bias_is_trained():
    model = _model()
    x = torch.randn(2, BANDS, 16, 16)
    F.l1_loss(model(x), 0.5 * x).backward()
    grads = [
        p.grad
        for name, p in model.named_parameters()
        if name.endswith("relative_position_bias_table")
    ]
    assert len(grads) == 2
    assert all(g is not None and g.abs().sum() > 0 for g in grads)


# --- shapes and determinism ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "patch_size"),
    [
        (16, 2),  # 8×8 grid, two windows a side
        (24, 2),  # 12×12 grid
        (40, 2),  # a multiple of 8 but not of 16
        (40, 4),  # a 10×10 grid, padded to 12×12 for the windows
        (16, 4),  # a 4×4 grid: a single window, never shifted
    ],
)
def test_translation_keeps_shape(size, patch_size):
    model = _model(size, patch_size=patch_size)
    x = torch.randn(2, BANDS, size, size)
    out = _translate(model, x)
    assert out.shape == x.shape
    assert torch.isfinite(out).all()


def test_translation_is_deterministic_and_ignores_the_generator():
    model = _model()
    x = torch.randn(3, BANDS, 16, 16)
    first = _translate(model, x, seed=1)
    torch.testing.assert_close(_translate(model, x, seed=1), first, rtol=0, atol=0)
    # Not stochastic: another seed gives the same images.
    torch.testing.assert_close(_translate(model, x, seed=2), first, rtol=0, atol=0)
    # Each image is translated on its own: batch neighbours do not leak in.
    torch.testing.assert_close(_translate(model, x[1:2]), first[1:2], rtol=1e-5, atol=1e-5)


def test_state_dict_round_trip_gives_identical_translation():
    model = _model(24, seed=0)
    x = torch.randn(2, BANDS, 24, 24)
    fresh = _model(24, seed=1)
    assert not torch.equal(_translate(fresh, x), _translate(model, x))
    fresh.load_state_dict(model.state_dict())
    torch.testing.assert_close(_translate(fresh, x), _translate(model, x), rtol=0, atol=0)


# --- training ---------------------------------------------------------------------------


def test_training_on_a_toy_paired_task_lowers_the_l1():
    torch.manual_seed(0)
    source = torch.randn(8, BANDS, 16, 16)
    kernel = torch.full((BANDS, 1, 3, 3), 1 / 9)
    target = 0.5 * F.conv2d(source, kernel, padding=1, groups=BANDS)  # blurred, dimmer
    model = _model(16, seed=0)
    optimizers = model.make_optimizers(1e-2)
    generator = torch.Generator().manual_seed(0)
    model.train()
    losses = []
    for step in range(30):
        rows = slice(4 * (step % 2), 4 * (step % 2) + 4)
        terms = model.train_step(_batch(source[rows], target[rows]), optimizers, 0, generator)
        losses.append(terms["l1"])
    first, last = sum(losses[:4]) / 4, sum(losses[-4:]) / 4
    # Seeds 0-2 all reach about 0.55 of the first loss.
    assert last < 0.7 * first, (first, last)


def test_train_step_returns_finite_l1_and_updates_weights():
    model = _model()
    optimizers = model.make_optimizers(1e-3)
    before = model.net.conv_last.weight.detach().clone()
    x = torch.randn(4, BANDS, 16, 16)
    terms = model.train_step(_batch(x, 0.5 * x), optimizers, 0, torch.Generator())
    assert set(terms) == {"l1"}
    assert type(terms["l1"]) is float
    assert terms["l1"] > 0 and terms["l1"] == terms["l1"] and terms["l1"] < float("inf")
    assert not torch.equal(model.net.conv_last.weight, before)


def test_make_optimizers_gives_one_adamw_without_decay_on_position_biases():
    model = _model()
    optimizers = model.make_optimizers(2e-3)
    assert list(optimizers) == ["generator"]
    opt = optimizers["generator"]
    assert isinstance(opt, torch.optim.AdamW)
    assert all(group["lr"] == 2e-3 for group in opt.param_groups)
    in_groups = [p for group in opt.param_groups for p in group["params"]]
    assert len(in_groups) == len(list(model.parameters()))
    no_decay = {id(p) for g in opt.param_groups if g["weight_decay"] == 0 for p in g["params"]}
    table = model.net.blocks[0].layers[0].attn.relative_position_bias_table
    assert id(table) in no_decay
    assert id(model.net.conv_last.weight) not in no_decay


# --- validation -------------------------------------------------------------------------


def test_empty_batch_is_refused():
    model = _model()
    x = torch.randn(0, BANDS, 16, 16)
    with pytest.raises(ValidationError, match="paired"):
        model.train_step(_batch(x, x), model.make_optimizers(1e-3), 0, torch.Generator())


@pytest.mark.parametrize(
    ("shape", "match"),
    [((2, BANDS - 1, 16, 16), "shape"), ((2, BANDS, 24, 24), "shape"), (None, "NaN")],
)
def test_bad_images_are_refused(shape, match):
    model = _model()
    if shape is None:
        x = torch.randn(2, BANDS, 16, 16)
        x[1, 2, 3, 4] = float("nan")
    else:
        x = torch.randn(shape)
    with pytest.raises(ValidationError, match=match):
        _translate(model, x)
    with pytest.raises(ValidationError, match=match):
        model.train_step(_batch(x, x.clone()), model.make_optimizers(1e-3), 0, torch.Generator())


def test_nan_in_the_target_is_refused():
    model = _model()
    x = torch.randn(2, BANDS, 16, 16)
    target = x.clone()
    target[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValidationError, match="target"):
        model.train_step(_batch(x, target), model.make_optimizers(1e-3), 0, torch.Generator())


def test_unknown_config_key_is_refused():
    with pytest.raises(ValidationError, match="unknown SwinConfig options"):
        SwinConfig.from_dict({"embed_dims": 16})
    with pytest.raises(ValidationError, match="unknown SwinConfig preset 'huge'; expected one of"):
        SwinConfig.preset("huge")
    with pytest.raises(ValidationError, match="SwinConfig preset 'gpu' is now called 'paper'"):
        SwinConfig.preset("gpu")


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"num_heads": 3}, "num_heads"),  # does not divide embed_dim = 8
        ({"patch_size": 3}, "patch_size"),
        ({"depths": ()}, "depths"),
        ({"depths": (2, 0)}, "depths"),
        ({"window_size": 0}, "window_size"),
        ({"embed_dim": 8.5}, "embed_dim"),
        ({"mlp_ratio": 0.0}, "mlp_ratio"),
        ({"weight_decay": -1e-3}, "weight_decay"),
    ],
)
def test_bad_config_values_are_refused(overrides, match):
    with pytest.raises(ValidationError, match=match):
        SwinConfig.preset("tiny", **overrides)


def test_config_json_round_trip_turns_lists_into_tuples():
    cfg = SwinConfig.from_dict({"depths": [3, 1]})
    assert cfg.depths == (3, 1)
    assert SwinConfig.from_dict(cfg.to_dict()) == cfg


def test_presets_build_and_grow():
    counts = {}
    for name in ("tiny", "cpu", "paper"):
        model = SwinTranslator(SwinConfig.preset(name), n_bands=BANDS, size=136)
        counts[name] = sum(p.numel() for p in model.parameters())
    assert counts["tiny"] < counts["cpu"] < counts["paper"]
    assert SwinConfig.preset("cpu") == SwinConfig()
