"""The translation models: NR-GAN and the four families it is compared with.

Build one by name with :func:`clapkit.translate.registry.build_model`. This package's
top level imports nothing heavy, so the command line can list the names cheaply.
"""

#: The ``--model`` names, in the order tables list them.
MODEL_NAMES = ("nrgan", "swin", "srgan", "capsule", "diffusion")
