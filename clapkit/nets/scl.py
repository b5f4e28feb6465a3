"""The supervised-contrastive-learning network of CLAP: encoder, estimator, decoder.

:class:`NetConfig` says which encoder and how large; :class:`SCLNet` holds

- ``encoder``: input (+ extra scalars such as E(B−V)) → (v_A, v_B);
- ``estimator``: v_A → logits over redshift bins;
- ``decoder`` (optional): [v_A, v_B] → reconstructed input.

Called as ``net(x, extra)`` it is the end-to-end estimator used at inference. The loss
that trains it lives in :mod:`clapkit.nets.losses`. A checkpoint is the state dict plus
``config.to_dict()`` as JSON.
"""

from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from clapkit.checks import check_int
from clapkit.errors import ValidationError
from clapkit.nets.encoders import MIN_IMAGE_SIZE, CompactEncoder, InceptionEncoder, MLPEncoder
from clapkit.nets.heads import Estimator, FeatureDecoder, ImageDecoder

#: Encoder kinds: two for images, one for catalog features.
KINDS = ("compact", "paper", "mlp")
IMAGE_KINDS = ("compact", "paper")
_SIZE_FIELDS = ("n_bins", "n_bands", "image_size", "n_features", "n_extra", "latent_dim",
                "rest_dim", "width", "estimator_hidden")  # fmt: skip


@dataclass
class NetConfig:
    """Architecture of an :class:`SCLNet`; JSON-safe through :meth:`to_dict`.

    Parameters
    ----------
    kind : {"compact", "paper", "mlp"}
        :class:`~clapkit.nets.encoders.CompactEncoder`,
        :class:`~clapkit.nets.encoders.InceptionEncoder` or
        :class:`~clapkit.nets.encoders.MLPEncoder`.
    n_bins : int
        Redshift bins of the estimator.
    n_bands, image_size : int
        Channels and side of the images the network sees (after cropping); image kinds.
    n_features : int
        Catalog features; kind "mlp".
    n_extra : int
        Extra scalars per galaxy (E(B−V) by default); may be 0.
    latent_dim, rest_dim : int
        Sizes of v_A and v_B (the paper: 16 and 512).
    width : int
        Channels of the convolutional encoder and decoder.
    hidden : tuple of int
        Hidden layers of the MLP encoder.
    estimator_hidden : int
        Hidden units of the estimator (the paper: 1024).
    dropout : float
        Dropout before the estimator's output layer.
    encoder_dropout : float
        Dropout before the encoder's last linear layer (MC dropout as published puts
        dropout in both the encoder and the estimator).
    decoder : bool
        Build a decoder (needed for the reconstruction view of the loss).
    batch_norm : bool
        Batch normalisation after every convolution of an image encoder (not for "mlp").

    Examples
    --------
    >>> cfg = NetConfig(kind="compact", n_bins=180, n_bands=5, image_size=32)
    >>> NetConfig.from_dict(cfg.to_dict()) == cfg
    True
    """

    kind: str
    n_bins: int
    n_bands: int = 0
    image_size: int = 0
    n_features: int = 0
    n_extra: int = 1
    latent_dim: int = 16
    rest_dim: int = 64
    width: int = 32
    hidden: tuple[int, ...] = (256, 256)
    estimator_hidden: int = 1024
    dropout: float = 0.0
    encoder_dropout: float = 0.0
    decoder: bool = True
    batch_norm: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValidationError(f"kind must be one of {list(KINDS)}, got {self.kind!r}")
        # Integers may arrive as numpy scalars (sizes read off arrays): store plain ints, so
        # that to_dict stays JSON-safe.
        for name in _SIZE_FIELDS:
            setattr(self, name, check_int(getattr(self, name), name, minimum=0))
        for name in ("n_bins", "latent_dim", "rest_dim", "width", "estimator_hidden"):
            check_int(getattr(self, name), name, minimum=1)
        if not isinstance(self.hidden, list | tuple):
            raise ValidationError(f"hidden must be a tuple of integers, got {self.hidden!r}")
        self.hidden = tuple(check_int(h, "hidden", minimum=1) for h in self.hidden)
        for name in ("dropout", "encoder_dropout"):
            rate = getattr(self, name)
            if isinstance(rate, bool) or not isinstance(rate, numbers.Real):
                raise ValidationError(f"{name} must be a number in [0, 1), got {rate!r}")
            if not 0.0 <= rate < 1.0:
                raise ValidationError(f"{name} must be in [0, 1), got {rate}")
            setattr(self, name, float(rate))
        if not isinstance(self.decoder, bool | np.bool_):
            raise ValidationError(f"decoder must be true or false, got {self.decoder!r}")
        self.decoder = bool(self.decoder)
        if not isinstance(self.batch_norm, bool | np.bool_):
            raise ValidationError(f"batch_norm must be true or false, got {self.batch_norm!r}")
        self.batch_norm = bool(self.batch_norm)
        if self.batch_norm and self.kind not in IMAGE_KINDS:
            raise ValidationError(
                f"batch_norm applies to the image encoders {list(IMAGE_KINDS)}, not {self.kind!r}"
            )
        if self.kind in IMAGE_KINDS:
            if self.n_bands < 1:
                raise ValidationError(f"kind {self.kind!r} needs n_bands >= 1, got {self.n_bands}")
            if self.image_size < MIN_IMAGE_SIZE:
                raise ValidationError(
                    f"kind {self.kind!r} needs image_size >= {MIN_IMAGE_SIZE}, got {self.image_size}"
                )
        elif self.n_features < 1:
            raise ValidationError(f"kind 'mlp' needs n_features >= 1, got {self.n_features}")

    def to_dict(self) -> dict[str, Any]:
        """Fields as a JSON-safe dict (tuples become lists)."""
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NetConfig:
        """Config from :meth:`to_dict` output; unknown or missing keys are errors."""
        if not isinstance(d, dict):
            raise ValidationError(f"a network config must be a dict, got {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValidationError(
                f"unknown network config keys {unknown}; expected a subset of {sorted(known)}"
            )
        missing = sorted({"kind", "n_bins"} - set(d))
        if missing:
            raise ValidationError(f"network config lacks the required keys {missing}")
        return cls(**d)


class SCLNet(nn.Module):
    """Encoder, estimator and optional decoder, built from a :class:`NetConfig`.

    Examples
    --------
    >>> cfg = NetConfig(kind="mlp", n_bins=10, n_features=4, n_extra=0, hidden=(8,),
    ...                 estimator_hidden=8)
    >>> net = SCLNet(cfg)
    >>> x = torch.zeros(3, 4)
    >>> v_a, v_b = net.encode(x)
    >>> net(x).shape, net.decode(v_a, v_b).shape
    (torch.Size([3, 10]), torch.Size([3, 4]))
    """

    def __init__(self, config: NetConfig) -> None:
        super().__init__()
        if not isinstance(config, NetConfig):
            raise ValidationError(f"config must be a NetConfig, got {type(config).__name__}")
        self.config = c = config
        self.encoder: nn.Module
        self.decoder: nn.Module | None = None
        if c.kind in IMAGE_KINDS:
            encoder = CompactEncoder if c.kind == "compact" else InceptionEncoder
            self.encoder = encoder(
                c.n_bands,
                c.image_size,
                c.n_extra,
                c.latent_dim,
                c.rest_dim,
                c.width,
                c.batch_norm,
                c.encoder_dropout,
            )
        else:
            self.encoder = MLPEncoder(
                c.n_features, c.n_extra, c.latent_dim, c.rest_dim, c.hidden, c.encoder_dropout
            )
        self.estimator = self.new_estimator()
        if c.decoder:
            in_dim = c.latent_dim + c.rest_dim
            if c.kind in IMAGE_KINDS:
                self.decoder = ImageDecoder(in_dim, c.n_bands, c.image_size, c.width)
            else:
                self.decoder = FeatureDecoder(in_dim, c.n_features, max(c.hidden, default=256))

    def encode(
        self, x: torch.Tensor, extra: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Input (+ extra scalars) to (v_A (B, latent_dim), v_B (B, rest_dim))."""
        return self.encoder(x, extra)

    def estimate(self, v_a: torch.Tensor) -> torch.Tensor:
        """v_A to logits over the redshift bins, (B, n_bins)."""
        return self.estimator(v_a)

    def decode(self, v_a: torch.Tensor, v_b: torch.Tensor) -> torch.Tensor:
        """(v_A, v_B) to the reconstructed input, shaped like the encoder's input."""
        if self.decoder is None:
            raise ValidationError("this network has no decoder; build it with decoder=True")
        return self.decoder(torch.cat([v_a, v_b], dim=1))  # (B, latent_dim + rest_dim) in

    def forward(self, x: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        """Logits over the redshift bins, (B, n_bins): encode, then estimate."""
        v_a, _ = self.encode(x, extra)
        return self.estimate(v_a)

    def new_estimator(self) -> Estimator:
        """A freshly initialised estimator of this config, on this network's device.

        The refit trains one on KNN PDFs with the encoder fixed.
        """
        c = self.config
        estimator = Estimator(c.latent_dim, c.n_bins, c.estimator_hidden, c.dropout)
        reference = next(self.encoder.parameters(), None)
        if reference is not None:
            estimator = estimator.to(device=reference.device, dtype=reference.dtype)
        return estimator


def build_net(config: NetConfig | dict[str, Any]) -> SCLNet:
    """An :class:`SCLNet` from a config or its dict form.

    Examples
    --------
    >>> net = build_net({"kind": "mlp", "n_bins": 5, "n_features": 3, "n_extra": 0,
    ...                  "hidden": [8], "estimator_hidden": 8, "decoder": False})
    >>> net.decoder is None
    True
    """
    if isinstance(config, dict):
        config = NetConfig.from_dict(config)
    return SCLNet(config)
