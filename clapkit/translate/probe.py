"""The redshift-information test: a photo-z network trained on real target images.

The published test of what translation preserves beyond pixels: train a photo-z model on
*real* images of the target survey, then apply the same model to real and to translated
test images. Redshift information lost (or invented) by a translator shows up as a worse
σ_MAD, bias, outlier fraction, CRPS or PIT against the model on real images.

The probe is the softmax baseline of :mod:`clapkit.photoz.network_baselines` (the
compact CNN on spec-z bins), reading pixels only (no E(B−V)), so that nothing but the
images carries redshift information.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from clapkit.atomic import write_json
from clapkit.checks import check_int
from clapkit.data import GalaxySet
from clapkit.errors import FileFormatError, ValidationError
from clapkit.metrics import summarize
from clapkit.photoz.features import default_edges
from clapkit.photoz.network_baselines import BaselineConfig, predict_baseline, train_softmax_net
from clapkit.photoz.network_inputs import InputSpec, make_input_spec, network_inputs
from clapkit.translate.models.base import strict_from_dict

__all__ = ["PROBE_METRICS", "ProbeConfig", "probe_metrics", "probe_pdfs", "train_probe"]

#: What the probe reports per set of images (from :func:`clapkit.metrics.summarize`).
PROBE_METRICS = ("sigma_mad", "bias", "outlier_fraction", "crps", "pit_w1")


@dataclass
class ProbeConfig:
    """Settings of the photo-z probe.

    Attributes
    ----------
    epochs, batch_size, learning_rate : training of the softmax network.
    n_bins : int
        Redshift bins of its output.
    crop : int or None
        Side of the central cut the network reads (None: the whole stamp). The galaxies
        sit at the stamp centre; a cut keeps the CPU cost of 136-pixel CFHTLS stamps down.
    seed : int
    """

    epochs: int = 15
    batch_size: int = 64
    learning_rate: float = 1e-3
    n_bins: int = 60
    crop: int | None = 48
    seed: int = 0

    def __post_init__(self) -> None:
        self.epochs = check_int(self.epochs, "epochs")
        self.batch_size = check_int(self.batch_size, "batch_size")
        self.n_bins = check_int(self.n_bins, "n_bins", minimum=2)
        if self.crop is not None:  # None: no crop
            self.crop = check_int(self.crop, "crop", minimum=8)
        self.seed = check_int(self.seed, "seed", minimum=0)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProbeConfig:
        """Build from JSON data; unknown keys are refused."""
        return strict_from_dict(cls, data, "probe")

    def baseline(self) -> BaselineConfig:
        """The softmax network's configuration."""
        return BaselineConfig(
            train={
                "epochs": self.epochs,
                "batch_size": self.batch_size,
                "learning_rate": self.learning_rate,
            }
        )


def train_probe(
    train: GalaxySet,
    valid: GalaxySet,
    instrument: str,
    probe_dir: str | os.PathLike,
    config: ProbeConfig | None = None,
    *,
    progress: bool = False,
) -> InputSpec:
    """Train the probe on real ``instrument`` images (or reuse the one in ``probe_dir``).

    A probe folder trained with another configuration is refused rather than reused.

    Parameters
    ----------
    train, valid : GalaxySet
        Training and validation galaxies with real ``instrument`` images.
    instrument : str
        The image stack the probe reads.
    probe_dir : path-like
        The probe's folder.
    config : ProbeConfig, optional
        The probe's settings.
    progress : bool
        Show progress bars.

    Returns
    -------
    InputSpec
        What the probe reads.
    """
    config = config or ProbeConfig()
    probe_dir = Path(probe_dir)
    spec_path = probe_dir / "probe.json"
    record = {"instrument": instrument, "config": asdict(config)}
    if spec_path.is_file():
        stored = json.loads(spec_path.read_text())
        if {k: stored.get(k) for k in record} != record:
            raise ValidationError(
                f"{probe_dir}: holds a probe trained with another configuration "
                f"({ {k: stored.get(k) for k in record} }); remove it to retrain"
            )
        if (probe_dir / "net.pt").is_file():
            return InputSpec.from_dict(stored["spec"])
    if instrument not in train.stacks:
        raise ValidationError(
            f"the probe reads {instrument!r} images; the training data has {sorted(train.stacks)}"
        )
    z = np.asarray(train.catalog["z"], dtype=np.float64)
    # Every training redshift must fall on the grid, so the grid reaches past the largest.
    edges = default_edges(z, n_bins=config.n_bins, z_max=float(np.ceil(np.max(z) * 10) / 10))
    size = int(train.stacks[instrument].shape[-1])
    spec = make_input_spec(
        train,
        edges,
        instrument=instrument,
        crop=size if config.crop is None else min(config.crop, size),
        extra_columns=(),
    )
    inputs = network_inputs(spec, train, require_z=True, progress=progress)
    valid_inputs = network_inputs(spec, valid, require_z=True)
    train_softmax_net(
        probe_dir / "net.pt",
        spec,
        config.baseline(),
        inputs,
        valid_inputs,
        seed=config.seed,
        progress=progress,
    )
    write_json(spec_path, {**record, "spec": spec.to_dict()}, overwrite=True)
    return spec


def read_probe(probe_dir: str | os.PathLike) -> tuple[InputSpec, ProbeConfig]:
    """The input spec and configuration of a trained probe."""
    path = Path(probe_dir) / "probe.json"
    if not path.is_file() or not (Path(probe_dir) / "net.pt").is_file():
        raise FileFormatError(f"{probe_dir}: no trained photo-z probe here")
    stored = json.loads(path.read_text())
    return InputSpec.from_dict(stored["spec"]), ProbeConfig.from_dict(stored["config"])


def probe_pdfs(probe_dir: str | os.PathLike, galaxies: GalaxySet) -> tuple[np.ndarray, np.ndarray]:
    """Redshift PDFs ``(N, n_bins)`` of ``galaxies`` from the probe, and the bin edges."""
    spec, config = read_probe(probe_dir)
    inputs = network_inputs(spec, galaxies)
    p = predict_baseline("softmax", probe_dir, spec, config.baseline(), inputs)
    return p, np.asarray(spec.edges)


def probe_metrics(
    p: np.ndarray, edges: np.ndarray, z_true: np.ndarray, outlier_threshold: float = 0.05
) -> dict[str, float]:
    """The :data:`PROBE_METRICS` of PDFs ``p`` against the true redshifts.

    Parameters
    ----------
    p : numpy.ndarray, shape (N, B)
        The probe's PDFs.
    edges : numpy.ndarray, shape (B + 1,)
        The redshift grid.
    z_true : numpy.ndarray, shape (N,)
        True redshifts.
    outlier_threshold : float
        |δz| above which a galaxy is an outlier.

    Returns
    -------
    dict
    """
    summary = summarize(p, edges, z_true, outlier_threshold=outlier_threshold)
    return {key: float(summary[key]) for key in PROBE_METRICS}
