"""Evaluation in the paper's terms ([PainDiffusion, §IV], docs/evaluation.md).

``metrics``: Sim, Corr (mean and the authors' max), Dist, Divrs, Var, and a PSPI regressor for FLAME
corpora. ``baselines``: ground truth, random training sequence, nearest neighbour, mean face. ``run``:
Table I and Fig. 6 (``painface evaluate``); ``report``: its table and figure; ``control`` and
``ablation``: Fig. 8 and Table II. The FSQ-VAE autoregressive baseline is a model of its own, in
:mod:`painface.baselines`; the commands are in :mod:`painface.commands`.
"""
