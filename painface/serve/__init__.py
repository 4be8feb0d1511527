"""Live serving: the web app (``app.py``: FastAPI + WebSocket, one patient per browser tab, page in
``static/``), the ``painface serve`` command (:mod:`painface.commands.serve`) and live links to robots and avatars
(``links.py``: OSC and VMC out, a joint angle in). Protocol and design: docs/live.md."""
