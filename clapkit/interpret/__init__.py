"""Interpreting stellar-mass estimation, scored against the mock survey's known truth.

- :mod:`~clapkit.interpret.mass`: CLAP with log M* as the target, one model per input set
  (photometry, + WISE, images, flux-normalised images, images + WISE, + redshift);
- :mod:`~clapkit.interpret.input_sets`: what each of those models reads;
- :mod:`~clapkit.interpret.galaxy_types`: the early/late split every summary is averaged by;
- :mod:`~clapkit.interpret.information`: per-galaxy mutual information from classifiers and
  its decomposition into redundant, unique and synergistic parts;
- :mod:`~clapkit.interpret.discovery`: global causal discovery (PC) over catalog columns,
  scored against :func:`clapkit.sim.graph.true_graph`;
- :mod:`~clapkit.interpret.fci`: FCI beside PC (hidden common causes and selection bias
  allowed), scored against the true PAG of the selected mock survey;
- :mod:`~clapkit.interpret.local_tests`: conditional-dependence tests in each galaxy's
  neighbourhood of the latent space, collected in a
  :class:`~clapkit.interpret.causal_graph.CausalGraph`, with the published overlapping
  neighbourhoods in :mod:`~clapkit.interpret.overlapping` and the per-neighbourhood
  statistics (weighted correlations, predictive efficiency) in
  :mod:`~clapkit.interpret.neighbourhood_stats`;
- :mod:`~clapkit.interpret.truth`: what the true graph, with the survey's selection,
  implies for those tests, and their verdicts scored against it;
- :mod:`~clapkit.interpret.attributions`: captum attributions of the image models, per band
  (integrated gradients, saliency, SmoothGrad; named in
  :mod:`~clapkit.interpret.attribution_names`, which imports no PyTorch);
- :mod:`~clapkit.interpret.pipeline` and :mod:`~clapkit.interpret.cli`: the stages of
  ``clapkit interpret train|causal|pid|attribute`` over a run directory;
- :mod:`~clapkit.interpret.results`: reading those stages' results back, without torch
  (what the dashboards call).
"""
