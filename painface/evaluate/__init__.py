"""Evaluation in the paper's terms ([PainDiffusion, §IV], docs/evaluation.md).

``metrics``: Sim, Corr (mean and the authors' max), Dist, Divrs, Var, and a PSPI regressor for FLAME
corpora. ``baselines``: ground truth, random training sequence, nearest neighbour, mean face. ``run``:
the ``painface evaluate`` command (Table I, Fig. 6); ``report``: its table and figure. ``fsq``: the
FSQ-VAE autoregressive baseline; ``control`` and ``ablation``: Fig. 8 and Table II.
"""
