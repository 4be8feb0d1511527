"""The heads the live page draws: ``GET /face.glb?identity=N`` (an identity's whole head, glTF binary with
one morph target per AU) from a small LRU cache, and the preset identities of the page's picker.

The seed of an identity is a non-negative integer (:func:`painface.face.identity.make_identity`); absent
means the average head. Building one head's glb takes about 0.2 s (in a worker thread), so the cache
only spares repeated downloads; it holds :data:`GLB_CACHE_SIZE` heads (about 1.5 MB each).
"""

from __future__ import annotations

import asyncio
import re
from collections import OrderedDict
from functools import lru_cache

from painface.errors import InputError

IDENTITY_PRESETS = (2, 35, 1, 30, 20, 3, 0, 36, 21, 11, 5, 4)
"""Seeds of the page's 12 preset identities: Monk skin tones 1-10 (two more at 1 and 6), 6 female and
6 male, 4 in each age group (young, middle, old), ordered by skin tone."""
MAX_IDENTITY_SEED = 2**31 - 1
GLB_CACHE_SIZE = 16
_SEED = re.compile(r"[0-9]{1,10}")


def parse_identity(text: str | None) -> int | None:
    """The seed in ``text`` (a query value): None when absent, else a decimal integer in
    0..:data:`MAX_IDENTITY_SEED`; anything else raises :class:`InputError` naming the value."""
    if text is None:
        return None
    shown = repr(text) if len(text) <= 40 else repr(text[:37]) + "..."
    if not _SEED.fullmatch(text) or int(text) > MAX_IDENTITY_SEED:
        raise InputError(f"identity: expected the seed of an identity, an integer 0..{MAX_IDENTITY_SEED} "
                         f"(leave it out for the average head), got {shown}")
    return int(text)


@lru_cache(maxsize=1)
def presets() -> list[dict]:
    """The preset identities: seed, sex, age, skin tone (Monk 1-10), hair colour and style."""
    from painface.face.identity import make_identity

    out = []
    for seed in IDENTITY_PRESETS:
        ident = make_identity(seed)
        out.append({"seed": seed, "sex": ident.sex, "age": ident.age, "skin_tone": ident.skin_tone,
                    "hair": ident.hair, "hair_style": ident.hair_style})
    return out


def head_glb(seed: int | None, fps: float) -> bytes:
    """The glb of identity ``seed``'s head (None: the average head), at rest (one frame)."""
    from painface.face.code import neutral_face
    from painface.face.export import glb_bytes
    from painface.face.identity import make_identity

    return glb_bytes(neutral_face(1), fps, make_identity(seed) if seed is not None else None, model="head")


class GlbCache:
    """Least-recently-used cache of head glbs by seed; builds run in a worker thread, one at a time."""

    def __init__(self, fps: float, size: int = GLB_CACHE_SIZE) -> None:
        self.fps, self.size = fps, size
        self.items: OrderedDict[int | None, bytes] = OrderedDict()
        self.lock: asyncio.Lock | None = None

    async def get(self, seed: int | None) -> bytes:
        if seed in self.items:
            self.items.move_to_end(seed)
            return self.items[seed]
        if self.lock is None:
            self.lock = asyncio.Lock()
        async with self.lock:
            if seed not in self.items:  # built meanwhile by another request?
                self.items[seed] = await asyncio.to_thread(head_glb, seed, self.fps)
                while len(self.items) > self.size:
                    self.items.popitem(last=False)
            return self.items[seed]
