"""Pain assessment from faces: ViTPain models trained on painface's synthetic faces.

``model`` (the network and its safetensors checkpoints), ``data`` (synthetic splits in memory,
augmentation), ``train`` (``painface train-assess``), ``metrics`` (MAE, r, AUROC, F1, ICC, bootstrap),
``predict`` (:class:`Assessor`: the ``painface analyze`` table from photos and videos), ``unbc`` and
``protocol`` (the UNBC-McMaster archive layout and its 5-fold / LOSO protocols). See docs/assess.md.
"""

from painface.assess.model import ViTConfig, ViTPain, load, save

__all__ = ["ViTConfig", "ViTPain", "load", "save", "Assessor"]


def __getattr__(name: str):
    if name == "Assessor":  # imports the face detector only when asked
        from painface.assess.predict import Assessor

        return Assessor
    raise AttributeError(name)
