"""Video pain classification: BioVid-Part-A-style clips (real or ``painface synth videos``) -> BL1 vs PA4
or five classes. :mod:`~painface.video.biovid_a` reads the clips, :mod:`~painface.video.model` holds the
models, :mod:`~painface.video.train` the ``train-video`` protocol, :mod:`~painface.video.classify`
``classify-video``."""
