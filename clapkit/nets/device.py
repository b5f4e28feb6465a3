"""Where a network trains: the CPU, or a CUDA GPU when one is asked for and present."""

from __future__ import annotations

import torch

from clapkit.errors import ValidationError


def resolve_device(device: str | torch.device | None) -> torch.device:
    """The torch device called ``device``, refused with a clear message if unusable.

    ``None`` and ``"cpu"`` are the CPU; ``"auto"`` is the first GPU when PyTorch sees one,
    else the CPU; ``"cuda"`` or ``"cuda:N"`` must name a GPU this PyTorch can use (the CPU
    build the Makefile installs sees none).

    Examples
    --------
    >>> resolve_device(None), resolve_device("cpu")
    (device(type='cpu'), device(type='cpu'))
    >>> resolve_device("auto").type in ("cpu", "cuda")
    True
    """
    if device is None:
        return torch.device("cpu")
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValidationError(
            f"unknown device {device!r}; expected 'cpu', 'cuda', 'cuda:N' or 'auto'"
        ) from err
    if resolved.type == "cpu":
        return resolved
    if resolved.type != "cuda":
        raise ValidationError(f"device {device!r}: clapkit trains on 'cpu' or 'cuda' only")
    if not torch.cuda.is_available():
        raise ValidationError(
            f"device {device!r} asked for, but this PyTorch ({torch.__version__}) sees no "
            "CUDA GPU; use --device cpu"
        )
    if resolved.index is not None and resolved.index >= torch.cuda.device_count():
        raise ValidationError(
            f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s)"
        )
    return resolved
