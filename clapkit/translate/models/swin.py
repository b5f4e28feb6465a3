"""SwinIR-style translation: residual Swin transformer blocks on a patch grid.

Follows Liang et al. 2021, "SwinIR: Image Restoration Using Swin Transformer"
(ICCV Workshops, arXiv:2108.10257). The network has SwinIR's three parts:

1. *shallow feature extraction*: one 3×3 convolution from the bands to ``pixel_dim``
   channels at full resolution;
2. *deep feature extraction*: residual Swin transformer blocks (RSTB). Each stacks Swin
   layers (LayerNorm, window multi-head self-attention with a learned relative position
   bias, LayerNorm, MLP; every second layer shifts its windows by half a window, with
   the attention mask that keeps wrapped-around regions apart), then a 3×3 convolution
   and a residual connection. A LayerNorm and a 3×3 convolution follow the last block,
   with a residual connection around the whole deep part;
3. *reconstruction*: a 3×3 convolution back to the bands. The network outputs a
   residual that is added to the input image, so it learns only what differs between
   source and target (blur, depth, noise texture).

One departure from SwinIR: SwinIR attends over single pixels, which at 136×136 pixels
costs too much on a CPU. Here the tokens are ``patch_size``×``patch_size`` patches of
the shallow features (a strided convolution to ``embed_dim`` channels) and go back to
full resolution with a transposed convolution of the same stride; the full-resolution
shallow features skip past the transformer, so fine detail need not squeeze through the
patch grid. As in SwinIR, the token grid is padded to a multiple of the window inside
the forward pass and cropped back (136 pixels in 4×4 patches make a 34×34 grid).
Training minimises the L1 distance to the paired target, SwinIR's loss.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F

from clapkit.checks import check_int
from clapkit.errors import ValidationError
from clapkit.translate.models.base import ModelConfig, TranslationBatch, Translator

__all__ = [
    "RSTB",
    "SwinConfig",
    "SwinIRNet",
    "SwinLayer",
    "SwinTranslator",
    "WindowAttention",
    "WindowGrid",
]

#: Patch sizes that divide every allowed image side (multiples of 8).
PATCH_SIZES = (1, 2, 4, 8)


# --- windows ----------------------------------------------------------------------------


def _window_partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """``(B, H, W, C)`` → ``(B, nW, window², C)``, windows in row-major order."""
    b, h, w, c = x.shape
    x = x.view(b, h // window, window, w // window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(b, -1, window * window, c)


def _relative_position_index(window: int) -> torch.Tensor:
    """``(window², window²)`` index into the ``(2·window − 1)²`` relative offsets."""
    coords = torch.stack(
        torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
    ).flatten(1)  # (2, N)
    rel = coords[:, :, None] - coords[:, None, :]  # (2, N, N), offsets in -(w-1)..(w-1)
    rel = rel + (window - 1)
    return rel[0] * (2 * window - 1) + rel[1]


def _shifted_window_mask(side: int, window: int, shift: int) -> torch.Tensor:
    """``(nW, window², window²)`` additive mask for windows shifted by ``shift``.

    After the cyclic shift, a window at the grid's edge holds tokens from opposite
    sides of the grid; the mask keeps each region attending only to itself.
    """
    region = torch.zeros(1, side, side, 1)
    cuts = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    label = 0
    for rows in cuts:
        for cols in cuts:
            region[:, rows, cols, :] = label
            label += 1
    labels = _window_partition(region, window).squeeze(-1).squeeze(0)  # (nW, N)
    differs = labels[:, :, None] != labels[:, None, :]  # (nW, N, N)
    # A large finite value rather than -inf, as in Swin: a token always sees its own
    # region, and finite values keep the softmax free of NaN in every precision.
    return torch.zeros(differs.shape).masked_fill(differs, -100.0)


class WindowGrid(nn.Module):
    """How a square grid of tokens is cut into (cyclically shifted) windows.

    The cut is stored as a token permutation, so that partitioning and its inverse are
    one gather each, which on a CPU is much cheaper than Swin's ``torch.roll`` followed
    by a reshaping copy. Shifted grids also carry their attention mask.

    Parameters
    ----------
    side : int
        Side of the token grid; a multiple of ``window``.
    window : int
        Side of the windows.
    shift : int
        Cyclic shift of the windows, in tokens (0: regular windows).

    Examples
    --------
    >>> grid = WindowGrid(side=8, window=4, shift=2)
    >>> x = torch.randn(2, 64, 3)  # (B, L, C), tokens in row-major order
    >>> windows = grid.partition(x)
    >>> tuple(windows.shape), tuple(grid.mask.shape), bool((grid.reverse(windows) == x).all())
    ((2, 4, 16, 3), (4, 16, 16), True)
    """

    def __init__(self, side: int, window: int, shift: int) -> None:
        super().__init__()
        if side % window or not 0 <= shift < window:
            raise ValidationError(
                f"need a grid side that window ({window}) divides and 0 <= shift < window, "
                f"got side {side}, shift {shift}"
            )
        self.side = side
        self.window = window
        self.n_windows = (side // window) ** 2
        self.window_tokens = window * window
        positions = torch.arange(side * side).view(1, side, side, 1)
        positions = torch.roll(positions, shifts=(-shift, -shift), dims=(1, 2))
        order = _window_partition(positions, window).flatten()  # (L,)
        # Derived from the geometry alone, so none of these enter the state dict.
        self.register_buffer("order", order, persistent=False)
        self.register_buffer("restore", torch.argsort(order), persistent=False)
        mask = _shifted_window_mask(side, window, shift) if shift else None
        self.register_buffer("mask", mask, persistent=False)

    def partition(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, L, C)`` tokens in row-major order → ``(B, nW, N, C)`` windows."""
        b, _, c = x.shape
        return x.index_select(1, self.order).view(b, self.n_windows, self.window_tokens, c)

    def reverse(self, windows: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`partition`: ``(B, nW, N, C)`` → ``(B, L, C)``."""
        return windows.flatten(1, 2).index_select(1, self.restore)


# --- Swin layers ------------------------------------------------------------------------


class WindowAttention(nn.Module):
    """Multi-head self-attention inside windows, with a learned relative position bias.

    Parameters
    ----------
    dim : int
        Channels of the tokens.
    num_heads : int
        Attention heads; must divide ``dim``.
    window : int
        Side of the square windows (``window²`` tokens each).

    Examples
    --------
    >>> attn = WindowAttention(dim=8, num_heads=2, window=4)
    >>> tokens = torch.randn(3, 2, 16, 8)  # (B, nW, window², C)
    >>> tuple(attn(tokens).shape)
    (3, 2, 16, 8)
    """

    def __init__(self, dim: int, num_heads: int, window: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValidationError(f"num_heads ({num_heads}) must divide dim ({dim})")
        self.num_heads = num_heads
        self.window = window
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * window - 1) ** 2, num_heads)
        )
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        # Derived from the window size alone, so it stays out of the state dict.
        self.register_buffer(
            "relative_position_index", _relative_position_index(window), persistent=False
        )

    def bias(self) -> torch.Tensor:
        """The ``(num_heads, window², window²)`` relative position bias."""
        n = self.window * self.window
        table = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        return table.view(n, n, self.num_heads).permute(2, 0, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Attend within each window; ``mask`` is ``(nW, N, N)`` additive, or None.

        Parameters
        ----------
        x : Tensor
            ``(B, nW, N, C)`` tokens, ``N = window²``.
        mask : Tensor, optional
            Additive mask of shifted windows, ``(nW, N, N)``.

        Returns
        -------
        Tensor
            ``(B, nW, N, C)``.
        """
        b, nw, n, c = x.shape
        heads = self.num_heads
        qkv = self.qkv(x).view(b, nw, n, 3, heads, c // heads)
        # Windows and heads share one axis so the mask broadcasts over the batch only.
        q, k, v = qkv.permute(3, 0, 1, 4, 2, 5).reshape(3, b, nw * heads, n, c // heads)
        attn_mask = self.bias().unsqueeze(0)  # (1, heads, N, N)
        if mask is not None:
            attn_mask = attn_mask + mask.unsqueeze(1)  # (nW, heads, N, N)
        attn_mask = attn_mask.expand(nw, heads, n, n).reshape(nw * heads, n, n)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)  # (B, nW·h, N, d)
        out = out.view(b, nw, heads, n, c // heads).transpose(2, 3).reshape(b, nw, n, c)
        return self.proj(out)  # (B, nW, N, C)


class SwinLayer(nn.Module):
    """One Swin transformer layer: (shifted) window attention and an MLP, pre-norm.

    Parameters
    ----------
    dim : int
        Channels of the tokens.
    num_heads : int
        Attention heads.
    windows : WindowGrid
        The (possibly shifted) windows of the token grid; shared between layers.
    mlp_ratio : float
        Hidden width of the MLP relative to ``dim``.

    Examples
    --------
    >>> layer = SwinLayer(8, num_heads=2, windows=WindowGrid(8, 4, shift=2), mlp_ratio=2.0)
    >>> tuple(layer(torch.randn(2, 64, 8)).shape)  # (B, L, C), an 8×8 grid
    (2, 64, 8)
    """

    def __init__(self, dim: int, num_heads: int, windows: WindowGrid, mlp_ratio: float) -> None:
        super().__init__()
        self.windows = windows
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, num_heads, windows.window)
        self.norm2 = nn.LayerNorm(dim)
        hidden = max(1, round(dim * mlp_ratio))
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, L, C)`` tokens in row-major order → ``(B, L, C)``."""
        windows = self.windows.partition(self.norm1(x))  # (B, nW, N, C)
        x = x + self.windows.reverse(self.attn(windows, self.windows.mask))
        return x + self.mlp(self.norm2(x))  # (B, L, C)


class RSTB(nn.Module):
    """Residual Swin transformer block: Swin layers, a 3×3 convolution, a skip.

    Layers alternate the two window grids, regular then shifted, as in Swin.

    Parameters
    ----------
    dim : int
        Channels of the tokens.
    depth : int
        Swin layers in the block.
    num_heads : int
        Attention heads of each layer.
    windows : tuple of WindowGrid
        Regular and shifted windows of the token grid (the same twice when the grid is
        a single window, which a shift would only roll onto itself).
    mlp_ratio : float
        Hidden width of the MLPs relative to ``dim``.

    Examples
    --------
    >>> grids = (WindowGrid(8, 4, shift=0), WindowGrid(8, 4, shift=2))
    >>> block = RSTB(8, depth=2, num_heads=2, windows=grids, mlp_ratio=2.0)
    >>> tuple(block(torch.randn(2, 64, 8)).shape)  # (B, L, C), an 8×8 grid
    (2, 64, 8)
    """

    def __init__(
        self,
        dim: int,
        depth: int,
        num_heads: int,
        windows: tuple[WindowGrid, WindowGrid],
        mlp_ratio: float,
    ) -> None:
        super().__init__()
        self.side = windows[0].side
        self.layers = nn.ModuleList(
            SwinLayer(dim, num_heads, windows[i % 2], mlp_ratio) for i in range(depth)
        )
        self.conv = nn.Conv2d(dim, dim, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, L, C)`` tokens in row-major order → ``(B, L, C)``."""
        y = x
        for layer in self.layers:
            y = layer(y)
        b, n, c = y.shape
        # A channels-last view: the convolution reads the token layout without a copy.
        y = self.conv(y.view(b, self.side, self.side, c).permute(0, 3, 1, 2))  # (B, C, H, W)
        return x + y.permute(0, 2, 3, 1).reshape(b, n, c)  # (B, L, C)


# --- the network ------------------------------------------------------------------------


def _init_linear(module: nn.Module) -> None:
    """SwinIR's initialisation of the transformer's linear layers."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        nn.init.zeros_(module.bias)


class SwinIRNet(nn.Module):
    """The SwinIR-style network for ``(B, n_bands, size, size)`` images.

    Parameters
    ----------
    n_bands : int
        Bands of the images (input and output).
    size : int
        Side of the images; a multiple of ``patch_size``. It fixes the token grid, hence
        the window padding and the shifted-window mask, which are built once here.
    embed_dim : int
        Channels of the tokens.
    depths : tuple of int
        Swin layers of each RSTB.
    num_heads : int
        Attention heads of every layer.
    window_size : int
        Window side in tokens (shrunk to the grid when the grid is smaller).
    mlp_ratio : float
        MLP hidden width relative to ``embed_dim``.
    patch_size : int
        Side of the pixel patches that become tokens.
    pixel_dim : int
        Channels of the full-resolution shallow features.

    Examples
    --------
    >>> net = SwinIRNet(n_bands=5, size=24, embed_dim=8, depths=(2,), num_heads=2,
    ...                 window_size=4, mlp_ratio=2.0, patch_size=2, pixel_dim=4)
    >>> tuple(net(torch.randn(2, 5, 24, 24)).shape)
    (2, 5, 24, 24)
    """

    def __init__(
        self,
        n_bands: int,
        size: int,
        embed_dim: int,
        depths: tuple[int, ...],
        num_heads: int,
        window_size: int,
        mlp_ratio: float,
        patch_size: int,
        pixel_dim: int,
    ) -> None:
        super().__init__()
        if size % patch_size:
            raise ValidationError(f"patch_size ({patch_size}) must divide the image size ({size})")
        self.grid = size // patch_size
        # Swin's rule: a grid no wider than a window is a single window, never shifted.
        window = min(window_size, self.grid)
        self.pad = -self.grid % window
        side = self.grid + self.pad
        regular = WindowGrid(side, window, shift=0)
        shifted = WindowGrid(side, window, shift=window // 2) if side > window else regular

        self.conv_first = nn.Conv2d(n_bands, pixel_dim, 3, padding=1)
        self.patch_embed = nn.Conv2d(pixel_dim, embed_dim, patch_size, stride=patch_size)
        self.blocks = nn.ModuleList(
            RSTB(embed_dim, depth, num_heads, (regular, shifted), mlp_ratio) for depth in depths
        )
        self.norm = nn.LayerNorm(embed_dim)
        self.conv_after_body = nn.Conv2d(embed_dim, embed_dim, 3, padding=1)
        self.unpatch = nn.ConvTranspose2d(embed_dim, pixel_dim, patch_size, stride=patch_size)
        self.conv_last = nn.Conv2d(pixel_dim, n_bands, 3, padding=1)
        self.apply(_init_linear)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, n_bands, size, size)`` source → same-shape prediction of the target."""
        shallow = self.conv_first(x)  # (B, P, S, S)
        tokens = self.patch_embed(shallow)  # (B, E, G, G), G = S / patch_size
        # Replicate rather than zero padding: padded tokens then look like the image's
        # edge, not like an empty sky that the attention would have to learn to ignore.
        y = F.pad(tokens, (0, self.pad, 0, self.pad), mode="replicate") if self.pad else tokens
        b, e, side, _ = y.shape
        y = y.permute(0, 2, 3, 1).reshape(b, side * side, e)  # (B, L, E), row-major
        for block in self.blocks:
            y = block(y)
        y = self.norm(y).view(b, side, side, e).permute(0, 3, 1, 2)  # (B, E, G', G')
        deep = self.conv_after_body(y[:, :, : self.grid, : self.grid]) + tokens  # (B, E, G, G)
        features = self.unpatch(deep) + shallow  # (B, P, S, S)
        return x + self.conv_last(features)  # (B, n_bands, S, S)


# --- config and translator --------------------------------------------------------------


def _as_float(value: Any, name: str, minimum: float, strict: bool) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = value > minimum if strict else value >= minimum
    if not ok:
        relation = ">" if strict else ">="
        raise ValidationError(
            f"SwinConfig.{name} must be a finite number {relation} {minimum}, got {value!r}"
        )
    return float(value)


@dataclass
class SwinConfig(ModelConfig):
    """Architecture and optimiser settings of :class:`SwinTranslator`.

    The defaults are the ``"cpu"`` preset: two RSTBs of two layers on 4×4-pixel
    patches (a 34×34 token grid at 136 pixels, padded to 36 for 6×6 windows).
    ``"paper"`` is SwinIR's classical restoration model (six RSTBs of six layers, 180
    channels, 6 heads, 8×8 windows) with one difference from the publication: tokens
    are 2×2-pixel patches, where SwinIR attends over single pixels (``patch_size=1``).

    Parameters
    ----------
    embed_dim : int
        Channels of the tokens.
    depths : tuple of int
        One entry per RSTB: its number of Swin layers.
    num_heads : int
        Attention heads of every Swin layer; must divide ``embed_dim``.
    window_size : int
        Side of the attention windows, in tokens.
    mlp_ratio : float
        Hidden width of the Swin MLPs relative to ``embed_dim``.
    patch_size : {1, 2, 4, 8}
        Side of the pixel patches that become tokens (1 is SwinIR's per-pixel tokens).
    pixel_dim : int
        Channels of the full-resolution shallow features, which skip the transformer.
    weight_decay : float
        AdamW weight decay of the weights (never of biases, norms or position biases).

    Examples
    --------
    >>> cfg = SwinConfig.preset("tiny")
    >>> cfg.depths, SwinConfig.from_dict(cfg.to_dict()) == cfg
    ((2,), True)
    """

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {
            "embed_dim": 8,
            "depths": (2,),
            "num_heads": 2,
            "window_size": 4,
            "patch_size": 2,
            "pixel_dim": 4,
        },
        "cpu": {},
        "paper": {
            "embed_dim": 180,
            "depths": (6, 6, 6, 6, 6, 6),
            "num_heads": 6,
            "window_size": 8,
            "patch_size": 2,
            "pixel_dim": 64,
        },
    }

    embed_dim: int = 32
    depths: tuple[int, ...] = (2, 2)
    num_heads: int = 2
    window_size: int = 6
    mlp_ratio: float = 2.0
    patch_size: int = 4
    pixel_dim: int = 8
    weight_decay: float = 1e-4

    def __post_init__(self) -> None:
        self.embed_dim = check_int(self.embed_dim, "SwinConfig.embed_dim")
        self.num_heads = check_int(self.num_heads, "SwinConfig.num_heads")
        self.window_size = check_int(self.window_size, "SwinConfig.window_size")
        self.patch_size = check_int(self.patch_size, "SwinConfig.patch_size")
        self.pixel_dim = check_int(self.pixel_dim, "SwinConfig.pixel_dim")
        if not isinstance(self.depths, list | tuple) or not self.depths:
            raise ValidationError(
                f"SwinConfig.depths must be a non-empty list of layer counts, got {self.depths!r}"
            )
        # A tuple whatever came in, so that a config read back from JSON (a list) compares
        # equal to the one that was written.
        self.depths = tuple(check_int(d, "SwinConfig.depths[]") for d in self.depths)
        self.mlp_ratio = _as_float(self.mlp_ratio, "mlp_ratio", 0.0, strict=True)
        self.weight_decay = _as_float(self.weight_decay, "weight_decay", 0.0, strict=False)
        if self.embed_dim % self.num_heads:
            raise ValidationError(
                f"SwinConfig.num_heads ({self.num_heads}) must divide embed_dim ({self.embed_dim})"
            )
        if self.patch_size not in PATCH_SIZES:
            raise ValidationError(
                f"SwinConfig.patch_size must be one of {PATCH_SIZES} (divisors of every image size), got {self.patch_size}"
            )


class SwinTranslator(Translator):
    """Supervised SwinIR-style translator trained with an L1 loss on paired images.

    Parameters
    ----------
    config : SwinConfig
        Architecture and optimiser settings.
    n_bands : int
        Bands per image.
    size : int
        Image side, a multiple of 8.

    Examples
    --------
    >>> model = SwinTranslator(SwinConfig.preset("tiny"), n_bands=5, size=16)
    >>> opt = model.make_optimizers(1e-3)
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.randn(2, 5, 16, 16)
    >>> batch = TranslationBatch(x, 0.5 * x, x[:0], x[:0])
    >>> sorted(model.train_step(batch, opt, epoch=0, generator=g))
    ['l1']
    >>> with torch.no_grad():
    ...     tuple(model.eval().translate(x, g).shape)
    (2, 5, 16, 16)
    """

    name: ClassVar[str] = "swin"
    config_class: ClassVar[type[ModelConfig]] = SwinConfig
    supervised: ClassVar[bool] = True

    def __init__(self, config: SwinConfig, n_bands: int, size: int) -> None:
        super().__init__(config, n_bands, size)
        self.net = SwinIRNet(
            n_bands=self.n_bands,
            size=self.size,
            embed_dim=config.embed_dim,
            depths=config.depths,
            num_heads=config.num_heads,
            window_size=config.window_size,
            mlp_ratio=config.mlp_ratio,
            patch_size=config.patch_size,
            pixel_dim=config.pixel_dim,
        )

    def forward(self, source: torch.Tensor) -> torch.Tensor:
        """``(B, n_bands, size, size)`` → the predicted target images, same shape."""
        return self.net(source)

    def make_optimizers(self, learning_rate: float) -> dict[str, torch.optim.Optimizer]:
        """``{"generator": AdamW}`` over the whole network, at ``learning_rate``.

        Biases, LayerNorms and the relative position tables get no weight decay, as in
        Swin: shrinking them towards zero has no regularising meaning.
        """
        decay, no_decay = [], []
        for name, param in self.net.named_parameters():
            if param.ndim < 2 or "relative_position_bias_table" in name:
                no_decay.append(param)
            else:
                decay.append(param)
        groups = [
            {"params": decay, "weight_decay": self.config.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        # SwinIR's Adam betas.
        return {"generator": torch.optim.AdamW(groups, lr=learning_rate, betas=(0.9, 0.99))}

    def train_step(
        self,
        batch: TranslationBatch,
        optimizers: dict[str, torch.optim.Optimizer],
        epoch: int,
        generator: torch.Generator,
    ) -> dict[str, float]:
        """One AdamW step on the mean absolute error; returns ``{"l1": loss}``.

        ``epoch`` and ``generator`` are unused: training is deterministic given the batch.
        """
        if batch.source.shape[0] == 0:
            raise ValidationError(
                f"{self.name} is supervised and needs paired source/target images; the batch has none"
            )
        self.check_images(batch.source, "source")
        self.check_images(batch.target, "target")
        optimizer = optimizers["generator"]
        optimizer.zero_grad(set_to_none=True)
        loss = F.l1_loss(self(batch.source), batch.target)
        loss.backward()
        optimizer.step()
        return {"l1": loss.item()}

    def translate(self, source: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Predict the target images; deterministic (``generator`` is unused)."""
        self.check_images(source, "source images")
        return self(source)
