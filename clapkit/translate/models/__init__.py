"""The translation models: NR-GAN and the four families it is compared with.

Build one by name with :func:`clapkit.translate.registry.build_model`. This package's
top level imports nothing heavy, so the command line can list the names cheaply.
"""

#: The model families (``--model`` names), in the order tables list them.
MODEL_NAMES = ("nrgan", "swin", "srgan", "capsule", "diffusion")

#: Named variants of a family: the same code with other settings. ``nrgan`` is NR-GAN as
#: published; ``nrgan_clapkit`` clapkit's earlier design; the others the publication's
#: ablations (see :mod:`clapkit.translate.models.nrgan`).
VARIANT_NAMES = ("nrgan_clapkit", "nrgan_pix2pix", "nrgan_cyclegan", "nrgan_cyclegan_id")

#: Everything ``--model`` takes: the families, then the variants.
TRAINABLE_NAMES = MODEL_NAMES + VARIANT_NAMES


def family_of(name: str) -> str:
    """The family a model or variant name belongs to (a family is its own).

    Examples
    --------
    >>> family_of("nrgan_clapkit"), family_of("swin")
    ('nrgan', 'swin')
    """
    if name in VARIANT_NAMES:
        return name.split("_", 1)[0]
    return name
