"""One module per ``painface`` command (``configure(parser)`` + ``run(args)``); the convention is in
:mod:`painface.cli`. Nothing here imports a domain module at import time."""
