"""Synthetic data made with painface's own head: 3DPain-style pain-face image datasets
(:mod:`painface.synth.faces`, ``painface synth faces``) and a loader for them
(:class:`painface.synth.dataset.SynthFaces`); BioVid-Part-A-style pain videos of virtual subjects
(:mod:`painface.synth.videos`, ``painface synth videos``)."""
