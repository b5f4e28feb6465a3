"""A conditional denoising diffusion model: source image in, sampled target image out.

Training follows DDPM (Ho, Jain & Abbeel 2020, "Denoising Diffusion Probabilistic
Models"): a clean image ``x0`` is noised to ``x_t = √ᾱ_t x0 + √(1 − ᾱ_t) ε`` at a random
step ``t`` of ``timesteps`` and a U-Net learns to predict ``ε`` with a mean squared error.
The noise schedule is the cosine one of Nichol & Dhariwal (2021, "Improved Denoising
Diffusion Probabilistic Models") or DDPM's linear one. Sampling uses DDIM (Song, Meng &
Ermon 2021, "Denoising Diffusion Implicit Models") over ``sampling_steps`` evenly spaced
steps, deterministic for ``eta = 0``, so a handful of network calls suffice on a CPU.

The model is conditioned as in SR3 and Palette (Saharia et al. 2022, "Image
Super-Resolution via Iterative Refinement" and "Palette: Image-to-Image Diffusion
Models"): the source image is concatenated to the noisy image along channels at every
step. By default the diffused quantity is the *residual* ``target − source`` rather than
the target itself: both images already lie on the same grid and scale, so the residual
holds only what differs between the surveys (sharper cores, other noise), which is small
and far easier to learn in a few epochs than the whole galaxy; ``residual=False``
diffuses the target instead.

A translation is a sample, not a mean: it starts from Gaussian noise drawn from the
caller's generator, so equal seeds give equal images and other seeds give other,
equally plausible realisations of the target survey's noise.

The denoiser is the DDPM U-Net, kept small: a sinusoidal timestep embedding and an MLP,
residual blocks (GroupNorm, SiLU, the time embedding added between the convolutions),
at most three halvings with skip connections (136 = 8·17 pixels halves cleanly three
times only), and multi-head self-attention over the spatial positions of the lowest
resolutions.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F

from clapkit.checks import check_int
from clapkit.errors import ValidationError
from clapkit.translate.models.base import ModelConfig, TranslationBatch, Translator

__all__ = [
    "DiffusionConfig",
    "DiffusionTranslator",
    "DiffusionUNet",
    "alpha_bar_schedule",
    "ddim_sample",
    "ddim_timesteps",
    "predict_x0",
    "q_sample",
    "timestep_embedding",
]

#: The schedules :func:`alpha_bar_schedule` knows.
SCHEDULES = ("cosine", "linear")
#: What the U-Net may predict: the velocity v (default) or the noise ε.
PREDICTIONS = ("v", "epsilon")

#: Most halvings the U-Net may do: image sides are multiples of 8, not of 16.
MAX_HALVINGS = 3


# --- noise schedule and sampler (pure functions) -----------------------------------------


def alpha_bar_schedule(kind: str, timesteps: int) -> torch.Tensor:
    """Cumulative signal fraction ``ᾱ_t`` for ``t = 0 … timesteps − 1`` (float64).

    Parameters
    ----------
    kind : {"cosine", "linear"}
        ``"cosine"``: ``ᾱ(t) ∝ cos²((t/T + s)/(1 + s) · π/2)`` with ``s = 0.008`` and
        every ``β_t`` capped at 0.999 (Nichol & Dhariwal 2021). ``"linear"``: ``β_t``
        from 1e-4 to 0.02 (Ho et al. 2020), rescaled so that any ``T`` ends as noisy as
        ``T = 1000`` does.
    timesteps : int
        Number of diffusion steps ``T``.

    Returns
    -------
    Tensor
        ``(T,)``, strictly decreasing from just below 1 towards 0.

    Examples
    --------
    >>> ab = alpha_bar_schedule("cosine", 1000)
    >>> bool(ab[0] > 0.9999), bool(ab[-1] < 1e-4), bool((ab.diff() < 0).all())
    (True, True, True)
    """
    if kind not in SCHEDULES:
        raise ValidationError(f"schedule must be one of {SCHEDULES}, got {kind!r}")
    check_int(timesteps, "timesteps")
    if kind == "linear":
        scale = 1000.0 / timesteps
        betas = torch.linspace(1e-4 * scale, 0.02 * scale, timesteps, dtype=torch.float64)
        betas = betas.clamp(max=0.999)
    else:
        s = 0.008
        u = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
        f = torch.cos((u + s) / (1 + s) * math.pi / 2) ** 2
        betas = (1 - f[1:] / f[:-1]).clamp(max=0.999)
    return torch.cumprod(1 - betas, dim=0)


def _per_sample(values: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``values[t]`` shaped to broadcast against ``like`` (B, ...) in its dtype."""
    return values.to(like.device)[t].to(like.dtype).reshape(-1, *([1] * (like.ndim - 1)))


def q_sample(
    x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, alpha_bars: torch.Tensor
) -> torch.Tensor:
    """Noise clean images to step ``t``: ``x_t = √ᾱ_t x0 + √(1 − ᾱ_t) ε``.

    Parameters
    ----------
    x0 : Tensor
        Clean images, ``(B, ...)``.
    t : Tensor
        Integer steps, ``(B,)``.
    noise : Tensor
        ``ε``, same shape as ``x0``.
    alpha_bars : Tensor
        ``(T,)`` from :func:`alpha_bar_schedule`.

    Returns
    -------
    Tensor
        ``x_t``, same shape as ``x0``.

    Examples
    --------
    Without noise the signal is only damped, by ``√ᾱ_t``, almost fully at the last step:

    >>> ab = alpha_bar_schedule("linear", 100)
    >>> x0, eps = torch.ones(2, 1, 4, 4), torch.zeros(2, 1, 4, 4)
    >>> xt = q_sample(x0, torch.tensor([0, 99]), eps, ab)
    >>> [round(v, 3) for v in xt[:, 0, 0, 0].tolist()]
    [0.999, 0.005]
    """
    a = _per_sample(alpha_bars, t, x0)
    return a.sqrt() * x0 + (1 - a).sqrt() * noise


def predict_x0(
    x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor, alpha_bars: torch.Tensor
) -> torch.Tensor:
    """Invert :func:`q_sample` for ``x0`` given a (predicted) noise ``ε``.

    Parameters
    ----------
    x_t : Tensor
        Noisy images, ``(B, ...)``.
    t : Tensor
        Integer steps, ``(B,)``.
    eps : Tensor
        Noise, same shape as ``x_t``.
    alpha_bars : Tensor
        ``(T,)`` from :func:`alpha_bar_schedule`.

    Returns
    -------
    Tensor
        ``(x_t − √(1 − ᾱ_t) ε) / √ᾱ_t``, same shape as ``x_t``.

    Examples
    --------
    >>> ab = alpha_bar_schedule("cosine", 50)
    >>> x0, eps, t = torch.full((1, 2), 3.0), torch.ones(1, 2), torch.tensor([10])
    >>> predict_x0(q_sample(x0, t, eps, ab), t, eps, ab).tolist()
    [[3.0, 3.0]]
    """
    a = _per_sample(alpha_bars, t, x_t)
    return (x_t - (1 - a).sqrt() * eps) / a.sqrt()


def ddim_timesteps(timesteps: int, steps: int) -> list[int]:
    """The steps ``⌊i·T/S⌋``, ``i = S − 1 … 0``, that DDIM visits, from noisy to clean.

    This is the "uniform" spacing of Song et al. (2021). Starting below ``T − 1`` matters
    for ε-prediction: the cosine schedule's last ``ᾱ`` is ~1e-9, where recovering ``x0``
    from ``ε̂`` divides its error by ``√ᾱ`` (×10⁴), whereas at ``⌊(S−1)T/S⌋`` the noise is
    still almost pure but the division is tame.

    Parameters
    ----------
    timesteps : int
        Steps ``T`` of the training schedule.
    steps : int
        Steps ``S`` of the sampler, in ``[1, T]``.

    Returns
    -------
    list of int
        ``S`` distinct steps, decreasing, the last one 0.

    Examples
    --------
    >>> ddim_timesteps(1000, 4)
    [750, 500, 250, 0]
    """
    if not 1 <= steps <= timesteps:
        raise ValidationError(f"sampling steps must lie in [1, {timesteps}], got {steps}")
    return [i * timesteps // steps for i in reversed(range(steps))]


def ddim_sample(
    denoise: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    shape: tuple[int, ...],
    alpha_bars: torch.Tensor,
    steps: int,
    generator: torch.Generator,
    eta: float = 0.0,
    clip_x0: float = 0.0,
) -> torch.Tensor:
    """Draw ``x0`` samples with DDIM (Song et al. 2021), starting from ``N(0, 1)`` noise.

    Parameters
    ----------
    denoise : callable
        ``denoise(x_t, t) -> ε̂``, with ``x_t`` of ``shape`` and ``t`` a ``(B,)`` long
        tensor; the conditioning lives in the closure.
    shape : tuple of int
        ``(B, ...)`` of the samples.
    alpha_bars : Tensor
        ``(T,)`` from :func:`alpha_bar_schedule`; its device is the samples' device.
    steps : int
        Network calls, evenly spaced over ``T`` (see :func:`ddim_timesteps`).
    generator : torch.Generator
        Source of the initial noise (and of the fresh noise when ``eta > 0``).
    eta : float
        0 gives the deterministic DDIM path; 1 the DDPM posterior's variance.
    clip_x0 : float
        When positive, clamp each predicted ``x0`` to ``[−clip_x0, clip_x0]``: near
        ``t = T`` the prediction divides by ``√ᾱ_t ≈ 0`` and small errors in ``ε̂``
        would otherwise blow up. 0 disables it.

    Returns
    -------
    Tensor
        Samples of ``shape``.

    Examples
    --------
    An oracle that knows ``x0`` returns the true noise, so DDIM lands on ``x0``:

    >>> ab = alpha_bar_schedule("cosine", 100)
    >>> x0 = torch.linspace(-2, 2, 8).reshape(1, 2, 2, 2)
    >>> def oracle(x_t, t):
    ...     a = ab[t].float().reshape(-1, 1, 1, 1)
    ...     return (x_t - a.sqrt() * x0) / (1 - a).sqrt()
    >>> out = ddim_sample(oracle, (1, 2, 2, 2), ab, 5, torch.Generator().manual_seed(0))
    >>> torch.allclose(out, x0, atol=1e-4)
    True
    """
    device = alpha_bars.device
    ab = alpha_bars.to(torch.float64)
    x = torch.randn(shape, generator=generator, device=generator.device).to(device)
    grid = ddim_timesteps(len(alpha_bars), steps)
    for i, step in enumerate(grid):
        a = ab[step]
        a_prev = ab[grid[i + 1]] if i + 1 < len(grid) else ab.new_tensor(1.0)
        t = torch.full((shape[0],), step, dtype=torch.long, device=device)
        eps = denoise(x, t)
        x0 = predict_x0(x, t, eps, alpha_bars)
        if clip_x0 > 0:
            x0 = x0.clamp(-clip_x0, clip_x0)
            # Re-derive ε from the clamped x0 so that the step stays on a consistent path.
            eps = (x - a.sqrt().to(x.dtype) * x0) / (1 - a).sqrt().to(x.dtype)
        sigma = eta * ((1 - a_prev) / (1 - a) * (1 - a / a_prev)).sqrt()
        direction = (1 - a_prev - sigma**2).clamp(min=0).sqrt()
        x = a_prev.sqrt().to(x.dtype) * x0 + direction.to(x.dtype) * eps
        if eta > 0 and i + 1 < len(grid):
            z = torch.randn(shape, generator=generator, device=generator.device).to(device)
            x = x + sigma.to(x.dtype) * z
    return x


# --- U-Net building blocks ---------------------------------------------------------------


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal embedding of integer steps, as in the Transformer and DDPM.

    Parameters
    ----------
    t : Tensor
        ``(B,)`` steps.
    dim : int
        Embedding width (even).
    max_period : float
        Longest wavelength, in steps.

    Returns
    -------
    Tensor
        ``(B, dim)``: cosines then sines of ``t`` at geometric frequencies.

    Examples
    --------
    >>> tuple(timestep_embedding(torch.tensor([0, 5, 999]), 16).shape)
    (3, 16)
    """
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half
    )
    angles = t.float()[:, None] * freqs[None, :]  # (B, dim/2)
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=1)  # (B, dim)


class _ResBlock(nn.Module):
    """GroupNorm–SiLU–conv twice, the time embedding added in between, plus a skip."""

    def __init__(self, in_ch: int, out_ch: int, time_dim: int, groups: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.time = nn.Linear(time_dim, out_ch)
        self.norm2 = nn.GroupNorm(groups, out_ch)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        # Zero init makes every block start as the identity, which steadies early training.
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))  # (B, out, H, W)
        h = h + self.time(F.silu(temb))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))  # (B, out, H, W)
        return self.skip(x) + h


class _SelfAttention(nn.Module):
    """Multi-head self-attention over the spatial positions, with a residual."""

    def __init__(self, channels: int, heads: int, groups: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm = nn.GroupNorm(groups, channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        qkv = self.qkv(self.norm(x))  # (B, 3C, H, W)
        qkv = qkv.reshape(b, 3, self.heads, c // self.heads, h * w).permute(1, 0, 2, 4, 3)
        q, k, v = qkv[0], qkv[1], qkv[2]  # (B, heads, HW, C/heads)
        out = F.scaled_dot_product_attention(q, k, v)  # (B, heads, HW, C/heads)
        out = out.permute(0, 1, 3, 2).reshape(b, c, h, w)  # (B, C, H, W)
        return x + self.proj(out)


class _Level(nn.Module):
    """The residual blocks (each optionally followed by attention) of one resolution."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        n_blocks: int,
        time_dim: int,
        groups: int,
        dropout: float,
        heads: int,
        attention: bool,
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            _ResBlock(in_ch if i == 0 else out_ch, out_ch, time_dim, groups, dropout)
            for i in range(n_blocks)
        )
        self.attention = nn.ModuleList(
            _SelfAttention(out_ch, heads, groups) if attention else nn.Identity()
            for _ in range(n_blocks)
        )

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        for block, attend in zip(self.blocks, self.attention, strict=True):
            x = attend(block(x, temb))  # (B, out, H, W)
        return x


class DiffusionUNet(nn.Module):
    """The noise predictor ``ε̂(x_t, t | source)``: a DDPM-style U-Net.

    Parameters
    ----------
    in_channels : int
        Channels of the noisy image and the condition together.
    out_channels : int
        Channels of the predicted noise.
    base_channels : int
        Width of the first level; level ``i`` has ``base_channels · channel_mults[i]``.
    channel_mults : tuple of int
        One entry per resolution; the image is halved ``len − 1`` times (at most 3).
    blocks_per_level : int
        Residual blocks per level on each side of the U.
    attention_levels : int
        Self-attention after the blocks of this many of the lowest resolutions (the
        middle block always attends).
    heads : int
        Attention heads.
    groups : int
        GroupNorm groups.
    dropout : float
        Dropout inside the residual blocks.

    Examples
    --------
    >>> net = DiffusionUNet(4, 2, 8, (1, 2), 1, 1, 2, 4, 0.0)
    >>> tuple(net(torch.zeros(3, 4, 24, 24), torch.tensor([0, 1, 2])).shape)
    (3, 2, 24, 24)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        base_channels: int,
        channel_mults: tuple[int, ...],
        blocks_per_level: int,
        attention_levels: int,
        heads: int,
        groups: int,
        dropout: float,
    ) -> None:
        super().__init__()
        # As wide as the MLP, not the narrow first level: T = 1000 steps need enough
        # frequencies to stay distinguishable.
        self.time_dim = time_dim = 4 * base_channels
        self.time_mlp = nn.Sequential(
            nn.Linear(time_dim, time_dim), nn.SiLU(), nn.Linear(time_dim, time_dim)
        )
        widths = [base_channels * m for m in channel_mults]
        n_levels = len(widths)
        attends = [i >= n_levels - attention_levels for i in range(n_levels)]
        common = {"time_dim": time_dim, "groups": groups, "dropout": dropout, "heads": heads}

        self.stem = nn.Conv2d(in_channels, base_channels, 3, padding=1)
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        ch = base_channels
        for i, width in enumerate(widths):
            self.down.append(_Level(ch, width, blocks_per_level, attention=attends[i], **common))
            ch = width
            if i < n_levels - 1:
                self.downsample.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1))
        self.middle = _Level(ch, ch, 2, attention=True, **common)
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for i in reversed(range(n_levels)):
            self.up.append(
                _Level(ch + widths[i], widths[i], blocks_per_level, attention=attends[i], **common)
            )
            ch = widths[i]
            if i > 0:
                # Narrowing before doubling the side costs a quarter of a 3x3 convolution
                # after it; the next level's 3x3 convolutions smooth the nearest copy.
                self.upsample.append(nn.Conv2d(ch, widths[i - 1], 1))
                ch = widths[i - 1]
        self.out_norm = nn.GroupNorm(groups, ch)
        self.out = nn.Conv2d(ch, out_channels, 3, padding=1)
        # A zero output layer starts the model at ε̂ = 0, the prior mean of the noise.
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        temb = self.time_mlp(timestep_embedding(t, self.time_dim))  # (B, 4·base)
        h = self.stem(x)  # (B, base, S, S)
        skips = []
        for i, level in enumerate(self.down):
            h = level(h, temb)  # (B, width_i, S/2^i, S/2^i)
            skips.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)  # (B, width_i, S/2^(i+1), S/2^(i+1))
        h = self.middle(h, temb)  # (B, width_last, S/2^L, S/2^L)
        for i, level in enumerate(self.up):
            h = level(torch.cat([h, skips.pop()], dim=1), temb)  # (B, width, s, s)
            if i < len(self.upsample):
                h = self.upsample[i](h)  # (B, width_next, s, s)
                h = F.interpolate(h, scale_factor=2.0, mode="nearest")  # (B, width_next, 2s, 2s)
        return self.out(F.silu(self.out_norm(h)))  # (B, out_channels, S, S)


# --- config and model --------------------------------------------------------------------


@dataclass
class DiffusionConfig(ModelConfig):
    """Options of :class:`DiffusionTranslator`; the defaults are the ``"cpu"`` preset.

    The ``"paper"`` preset is not a published configuration: it is an SR3/Palette-like
    U-Net (64 channels × (1, 2, 4, 8), two blocks per level, dropout 0.1) kept to three
    halvings for 136-pixel images, sampled with 50 DDIM steps.

    Attributes
    ----------
    base_channels : int
        U-Net width at full resolution.
    channel_mults : tuple of int
        Width multiplier per resolution; ``len − 1`` halvings, at most 3.
    blocks_per_level : int
        Residual blocks per resolution on each side of the U-Net.
    attention_levels : int
        Lowest resolutions with self-attention (the middle block always has it).
    attention_heads : int
        Heads of every attention layer; must divide the attended widths.
    norm_groups : int
        GroupNorm groups; must divide every width.
    dropout : float
        Dropout in the residual blocks, in [0, 1).
    timesteps : int
        Diffusion steps ``T`` of training.
    schedule : {"cosine", "linear"}
        Noise schedule (see :func:`alpha_bar_schedule`).
    sampling_steps : int
        DDIM steps of :meth:`DiffusionTranslator.translate`, in [1, timesteps].
    eta : float
        DDIM stochasticity in [0, 1]; 0 is deterministic given the initial noise.
    residual : bool
        Diffuse ``target − source`` (True) or the target itself (False).
    prediction : {"v", "epsilon"}
        What the U-Net predicts: the velocity ``v = √ᾱ ε − √(1 − ᾱ) x0`` (Salimans & Ho
        2022) or the noise ε (Ho et al. 2020). With ε-prediction the clean image is
        ``(x_t − √(1 − ᾱ) ε̂) / √ᾱ``, which multiplies the network's error by up to
        1/√ᾱ ≈ 6 at the first DDIM step: a small CPU-trained network then samples
        noise instead of galaxies. v-prediction keeps that error bounded at every step.
    clip_x0 : float
        Clamp of the predicted clean image while sampling, in scaled units (0: off).
        Scaled pixels stay below ~10, so 20 only stops run-away predictions.
    weight_decay : float
        AdamW weight decay.
    grad_clip : float
        Largest gradient norm per step (0: no clipping).

    Examples
    --------
    >>> DiffusionConfig.preset("tiny").channel_mults
    (1, 2, 2, 2)
    """

    base_channels: int = 8
    channel_mults: tuple[int, ...] = (1, 2, 4, 4)
    blocks_per_level: int = 1
    attention_levels: int = 1
    attention_heads: int = 2
    norm_groups: int = 4
    dropout: float = 0.0
    timesteps: int = 1000
    schedule: str = "cosine"
    sampling_steps: int = 10
    eta: float = 0.0
    residual: bool = True
    prediction: str = "v"
    clip_x0: float = 20.0
    weight_decay: float = 0.0
    grad_clip: float = 1.0

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {
            # Three halvings like "cpu", so that attention stays cheap even at 136 pixels.
            "channel_mults": (1, 2, 2, 2),
            "timesteps": 100,
            "sampling_steps": 4,
        },
        "cpu": {},
        "paper": {
            "base_channels": 64,
            "channel_mults": (1, 2, 4, 8),
            "blocks_per_level": 2,
            "attention_levels": 2,
            "attention_heads": 8,
            "norm_groups": 32,
            "dropout": 0.1,
            "sampling_steps": 50,
        },
    }

    def __post_init__(self) -> None:
        # JSON gives lists; a tuple keeps from_dict(to_dict()) equal and the config hashable.
        self.channel_mults = tuple(self.channel_mults)
        positive = {
            "base_channels": self.base_channels,
            "blocks_per_level": self.blocks_per_level,
            "attention_heads": self.attention_heads,
            "norm_groups": self.norm_groups,
            "timesteps": self.timesteps,
            "sampling_steps": self.sampling_steps,
        }
        for name, value in positive.items():
            check_int(value, f"DiffusionConfig.{name}")
        mults = self.channel_mults
        if not 1 <= len(mults) <= MAX_HALVINGS + 1:
            raise ValidationError(
                f"DiffusionConfig.channel_mults must be 1 to {MAX_HALVINGS + 1} integers >= 1 "
                f"(at most {MAX_HALVINGS} halvings), got {mults!r}"
            )
        for i, m in enumerate(mults):
            check_int(m, f"DiffusionConfig.channel_mults[{i}]")
        widths = [self.base_channels * m for m in mults]
        if any(w % self.norm_groups for w in widths):
            raise ValidationError(
                f"DiffusionConfig.norm_groups ({self.norm_groups}) must divide every width {widths}"
            )
        if not 0 <= self.attention_levels <= len(mults):
            raise ValidationError(
                f"DiffusionConfig.attention_levels must lie in [0, {len(mults)}], got {self.attention_levels}"
            )
        attended = widths[len(widths) - max(self.attention_levels, 1) :]
        if any(w % self.attention_heads for w in attended):
            raise ValidationError(
                f"DiffusionConfig.attention_heads ({self.attention_heads}) must divide the attended widths {attended}"
            )
        if not 0 <= self.dropout < 1:
            raise ValidationError(f"DiffusionConfig.dropout must lie in [0, 1), got {self.dropout}")
        if self.schedule not in SCHEDULES:
            raise ValidationError(
                f"DiffusionConfig.schedule must be one of {SCHEDULES}, got {self.schedule!r}"
            )
        if self.sampling_steps > self.timesteps:
            raise ValidationError(
                f"DiffusionConfig.sampling_steps must be <= timesteps ({self.timesteps}), got {self.sampling_steps}"
            )
        if not 0 <= self.eta <= 1:
            raise ValidationError(f"DiffusionConfig.eta must lie in [0, 1], got {self.eta}")
        if self.prediction not in PREDICTIONS:
            raise ValidationError(
                f"DiffusionConfig.prediction must be one of {PREDICTIONS}, got {self.prediction!r}"
            )
        if not isinstance(self.residual, bool):
            raise ValidationError(
                f"DiffusionConfig.residual must be True or False, got {self.residual!r}"
            )
        for name in ("clip_x0", "weight_decay", "grad_clip"):
            value = getattr(self, name)
            if not value >= 0 or math.isinf(value):
                raise ValidationError(
                    f"DiffusionConfig.{name} must be finite and >= 0, got {value}"
                )


class DiffusionTranslator(Translator):
    """Conditional DDPM trained on paired images, sampled with DDIM.

    One optimiser, ``"denoiser"`` (AdamW); :meth:`train_step` returns ``{"mse": …}``, the
    v- (or ε-) prediction error at uniformly drawn steps (about 1 for the untrained model).
    :meth:`translate` returns one sample per source image, drawn from ``generator``.

    Parameters
    ----------
    config : DiffusionConfig
        Architecture, schedule and sampler.
    n_bands : int
        Bands per image.
    size : int
        Image side, a multiple of 8.

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> model = DiffusionTranslator(DiffusionConfig.preset("tiny"), n_bands=2, size=16)
    >>> opts = model.make_optimizers(1e-3)
    >>> x = torch.randn(4, 2, 16, 16)
    >>> batch = TranslationBatch(x, 0.5 * x, x[:0], x[:0])
    >>> sorted(model.train_step(batch, opts, 0, torch.Generator().manual_seed(1)))
    ['mse']
    >>> with torch.no_grad():
    ...     out = model.eval().translate(x, torch.Generator().manual_seed(2))
    >>> tuple(out.shape)
    (4, 2, 16, 16)
    """

    name: ClassVar[str] = "diffusion"
    config_class: ClassVar[type[ModelConfig]] = DiffusionConfig
    supervised: ClassVar[bool] = True

    def __init__(self, config: DiffusionConfig, n_bands: int, size: int) -> None:
        super().__init__(config, n_bands, size)
        self.config: DiffusionConfig = config
        self.denoiser = DiffusionUNet(
            in_channels=2 * self.n_bands,
            out_channels=self.n_bands,
            base_channels=config.base_channels,
            channel_mults=config.channel_mults,
            blocks_per_level=config.blocks_per_level,
            attention_levels=config.attention_levels,
            heads=config.attention_heads,
            groups=config.norm_groups,
            dropout=config.dropout,
        )
        # Derived from the config, so kept out of the state dict.
        alpha_bars = alpha_bar_schedule(config.schedule, config.timesteps).float()
        self.register_buffer("alpha_bars", alpha_bars, persistent=False)

    def make_optimizers(self, learning_rate: float) -> dict[str, torch.optim.Optimizer]:
        """``{"denoiser": AdamW}`` over every parameter."""
        return {
            "denoiser": torch.optim.AdamW(
                self.denoiser.parameters(),
                lr=learning_rate,
                weight_decay=self.config.weight_decay,
            )
        }

    def _eps(self, x_t: torch.Tensor, t: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        """The noise ε implied by the network's output at ``x_t``, whatever it predicts."""
        out = self.denoiser(torch.cat([x_t, source], dim=1), t)  # (B, C, S, S)
        if self.config.prediction == "epsilon":
            return out
        a = self.alpha_bars[t].to(x_t.dtype).view(-1, 1, 1, 1)  # (B, 1, 1, 1)
        return (1 - a).sqrt() * x_t + a.sqrt() * out  # ε from v

    def train_step(
        self,
        batch: TranslationBatch,
        optimizers: dict[str, torch.optim.Optimizer],
        epoch: int,
        generator: torch.Generator,
    ) -> dict[str, float]:
        """One AdamW step on the v- (or ε-) prediction MSE at random steps; returns
        ``{"mse"}``."""
        source, target = batch.source, batch.target
        self.check_images(source, "source")
        self.check_images(target, "target")
        if source.shape[0] == 0:
            raise ValidationError(f"{self.name}: needs paired images, but batch.source is empty")
        x0 = target - source if self.config.residual else target  # (B, C, S, S)
        t = torch.randint(
            0, self.config.timesteps, (x0.shape[0],), generator=generator, device=generator.device
        ).to(x0.device)
        noise = torch.randn(x0.shape, generator=generator, device=generator.device).to(x0.device)
        x_t = q_sample(x0, t, noise, self.alpha_bars)  # (B, C, S, S)

        if self.config.prediction == "epsilon":
            wanted = noise
        else:
            a = self.alpha_bars[t].to(x0.dtype).view(-1, 1, 1, 1)  # (B, 1, 1, 1)
            wanted = a.sqrt() * noise - (1 - a).sqrt() * x0  # v
        optimizer = optimizers["denoiser"]
        optimizer.zero_grad(set_to_none=True)
        loss = F.mse_loss(self.denoiser(torch.cat([x_t, source], dim=1), t), wanted)
        loss.backward()
        if self.config.grad_clip > 0:
            nn.utils.clip_grad_norm_(self.denoiser.parameters(), self.config.grad_clip)
        optimizer.step()
        return {"mse": loss.item()}

    @property
    def stochastic(self) -> bool:
        """Always True: the initial noise of every sample comes from the seed (even with
        ``eta = 0``, where DDIM is deterministic only *given* that noise)."""
        return True

    def translate(self, source: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A DDIM sample of the target given ``source``; new seeds give new samples."""
        self.check_images(source, "source images")
        sample = ddim_sample(
            lambda x_t, t: self._eps(x_t, t, source),
            tuple(source.shape),
            self.alpha_bars,
            self.config.sampling_steps,
            generator,
            eta=self.config.eta,
            clip_x0=self.config.clip_x0,
        )  # (B, C, S, S)
        return sample + source if self.config.residual else sample
