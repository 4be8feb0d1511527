"""Files painface writes get the mode a plain open() gives (0666 less the umask), not the 0600 of the
temporary files they are written through."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from painface.cli import main
from painface.generation import Generation
from painface.io import temp_beside
from tests.test_generation import hand_made


@pytest.fixture(params=[0o027, 0o002])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_every_output_gets_0666_less_the_umask(tmp_path, umask) -> None:
    want = 0o666 & ~umask  # 0o640 and 0o664: neither is mkstemp's 0o600
    g = hand_made(1, 2, frames=3)
    written = [g.save(tmp_path / "g.npz"), g.export(tmp_path / "g.glb"), g.export(tmp_path / "g.csv"),
               g.export(tmp_path / "g.json"), g.render(tmp_path / "g.gif", size=32, layout="face"),
               g.render(tmp_path / "g.mp4", size=32, layout="face")]  # the encoder makes its own file
    g.plot(tmp_path / "g.png")
    written.append(tmp_path / "g.png")
    assert main(["generate", "--seconds", "1", "--steps", "1", "--csv", "--out", str(tmp_path / "cli.npz")]) == 0
    written += [tmp_path / "cli.npz", tmp_path / "cli.csv"]
    assert {p.name: oct(mode(p)) for p in written} == {p.name: oct(want) for p in written}
    assert Generation.load(tmp_path / "cli.npz").shape == (1, 25, 20)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporaries left


def test_temporaries_are_created_with_the_final_mode(tmp_path, umask) -> None:
    tmp = temp_beside(tmp_path / "x.bin")
    assert mode(tmp) == 0o666 & ~umask
    np.save(tmp_path / "plain.npy", np.zeros(1))  # what a plain open() gives, for comparison
    assert mode(tmp) == mode(tmp_path / "plain.npy")
