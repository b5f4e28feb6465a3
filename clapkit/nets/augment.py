"""Random views of a galaxy for the contrastive loss.

Images get one of the seven non-identity elements of the dihedral group D4 (the
symmetries of a square: three rotations, two flips, two transposes), which change
neither the galaxy nor its redshift. Catalog features have no such symmetry; their
analogue is a small Gaussian jitter of the standardised features.

Randomness enters only through an optional ``torch.Generator``; pass one to make the
views reproducible.
"""

from __future__ import annotations

import torch

from clapkit.errors import ValidationError

#: The eight elements of D4 as (quarter turns, flip after turning); index 0 is the identity.
DIHEDRAL_ELEMENTS: tuple[tuple[int, bool], ...] = tuple(
    (turns, flip) for flip in (False, True) for turns in range(4)
)


def apply_dihedral(x: torch.Tensor, element: int) -> torch.Tensor:
    """Apply one element of D4 (index into :data:`DIHEDRAL_ELEMENTS`) to all of ``x``.

    Elements 0–3 rotate by 0, 90, 180 and 270 degrees; 4–7 do the same and then flip
    left–right (4 is that flip, 5 the anti-diagonal transpose, 6 an up–down flip and 7 the
    transpose).

    Examples
    --------
    >>> x = torch.arange(4.0).reshape(1, 1, 2, 2)
    >>> apply_dihedral(x, 4)[0, 0]
    tensor([[1., 0.],
            [3., 2.]])
    """
    if not 0 <= int(element) < len(DIHEDRAL_ELEMENTS):
        raise ValidationError(f"dihedral element must be in 0..7, got {element}")
    turns, flip = DIHEDRAL_ELEMENTS[int(element)]
    out = torch.rot90(x, turns, dims=(-2, -1))
    return out.flip(-1) if flip else out


def random_dihedral(
    x: torch.Tensor, generator: torch.Generator | None = None, include_identity: bool = False
) -> torch.Tensor:
    """Each image gets its own random non-identity symmetry of the square.

    Parameters
    ----------
    x : torch.Tensor, shape (B, C, S, S)
        Square images. For catalog features use :func:`feature_jitter`.
    generator : torch.Generator, optional
        Source of randomness; the global one when omitted.
    include_identity : bool
        Draw from all eight symmetries, the identity included (the published code's
        random orientation of every training image), instead of the seven others.

    Returns
    -------
    torch.Tensor, shape (B, C, S, S)
        A new tensor; ``x`` is not modified.

    Examples
    --------
    >>> x = torch.rand(3, 5, 8, 8)
    >>> y = random_dihedral(x, torch.Generator().manual_seed(0))
    >>> y.shape, bool(torch.allclose(y.sum((1, 2, 3)), x.sum((1, 2, 3))))
    (torch.Size([3, 5, 8, 8]), True)
    """
    if x.ndim != 4:
        raise ValidationError(
            f"random_dihedral expects images of shape (B, C, H, W), got {tuple(x.shape)}; "
            "use feature_jitter for catalog features"
        )
    if x.shape[-1] != x.shape[-2]:
        raise ValidationError(
            f"random_dihedral expects square images, got {x.shape[-2]}×{x.shape[-1]}"
        )
    device = generator.device if generator is not None else x.device
    first = 0 if include_identity else 1
    choice = torch.randint(
        first, len(DIHEDRAL_ELEMENTS), (x.shape[0],), generator=generator, device=device
    )
    choice = choice.to(x.device)  # (B,)
    out = torch.empty_like(x)
    for element in range(first, len(DIHEDRAL_ELEMENTS)):
        chosen = choice == element
        out[chosen] = apply_dihedral(x[chosen], element)
    return out


def feature_jitter(
    x: torch.Tensor, scale: float = 0.05, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Add ``scale`` × N(0, 1) to every feature: the catalog analogue of a rotated view.

    Features are standardised upstream, so the default is a perturbation of 5% of a
    feature's spread.

    Examples
    --------
    >>> y = feature_jitter(torch.zeros(1000, 3), 0.1, torch.Generator().manual_seed(0))
    >>> round(float(y.std()), 1)
    0.1
    """
    if not scale >= 0:
        raise ValidationError(f"jitter scale must be >= 0, got {scale}")
    device = generator.device if generator is not None else x.device
    noise = torch.randn(x.shape, generator=generator, device=device, dtype=x.dtype)
    return x + scale * noise.to(x.device)
