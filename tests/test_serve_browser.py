"""End to end in real headless Chromium (Selenium, the system chromium and chromedriver): open the page,
move the stimulus slider, see PSPI rise in the page, take a screenshot.

Skipped only when the environment variable CI is unset and chromium is missing; in CI a missing browser
fails. ``PAINFACE_CHECKPOINT=path`` serves a real checkpoint instead of the tiny responsive model, and
``PAINFACE_SCREENSHOT=path.png`` keeps the screenshot (docs/figures/serve_page.png is made that way).
"""

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from test_stream import tiny_model

from painface.express import PainDiffusion
from painface.face.code import AU_NAMES
from painface.model.edm import Denoiser
from painface.serve.app import create_app
from painface.serve.cli import BackgroundServer

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
if not (CHROMIUM and DRIVER):
    if not os.environ.get("CI"):
        pytest.skip("chromium / chromedriver not installed (apt-get install chromium chromium-driver)",
                    allow_module_level=True)
    raise RuntimeError("CI is set but chromium or chromedriver is missing: .ci/run installs them")


class StimulusBrow(Denoiser):
    """A tiny denoiser whose brow lowerer (AU4) follows the stimulus, so PSPI must rise with the slider
    (a random tiny network does not listen to the stimulus)."""

    def forward(self, x, sigma, cond, drop=None):
        out = super().forward(x, sigma, cond, drop)
        keep = torch.ones(x.shape[0]) if drop is None else (~drop[:, 2]).float()
        bump = torch.zeros_like(out)
        bump[..., AU_NAMES.index("AU4")] = keep[:, None] * cond.stimulus * 1.5
        return out + bump


def model_under_test() -> tuple[PainDiffusion, dict]:
    path = os.environ.get("PAINFACE_CHECKPOINT")
    if path:
        return PainDiffusion.load(path), {}
    tiny = tiny_model()
    brow = StimulusBrow(tiny.denoiser.net, tiny.denoiser.sigma_data)
    info = dict(tiny.info, corpus=dict(tiny.info["corpus"], expressiveness={"min": 0.2, "max": 1.23, "subjects": 3}))
    return PainDiffusion(brow, info), dict(horizon=8, window=16, steps=3)


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1060,1000",
                "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(fn, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def shown_pspi(driver) -> float | None:
    text = driver.find_element("id", "pspi-value").text
    try:
        return float(text)
    except ValueError:
        return None


def test_slider_raises_pspi_in_the_page(browser, tmp_path):
    from selenium.webdriver.common.keys import Keys

    model, sampler = model_under_test()
    app = create_app(model, max_patients=4, threads=None, **sampler)
    with BackgroundServer(app) as url:
        browser.get(url + "/")
        wait_for(lambda: "patient" in browser.find_element("id", "status").text, 120, "the session to start")
        wait_for(lambda: browser.execute_script("return window.painfaceState.face !== null"), 120,
                 "the face mesh to load and WebGL to draw it")
        wait_for(lambda: shown_pspi(browser) is not None, 120, "the first frames")
        # the expressiveness slider spans the checkpoint's training subjects, rounded up to 0.1
        want_max = "1.3" if not os.environ.get("PAINFACE_CHECKPOINT") else None
        assert want_max is None or browser.find_element("id", "expressiveness").get_attribute("max") == want_max
        rest = []
        t_end = time.monotonic() + 3
        while time.monotonic() < t_end:
            rest.append(shown_pspi(browser))
            time.sleep(0.1)
        rest_level = float(np.median([r for r in rest if r is not None]))
        slider = browser.find_element("id", "stimulus")
        slider.click()
        slider.send_keys(Keys.END)  # the user drags the slider to the top
        assert browser.find_element("id", "stimulus-out").text == "1.00"
        risen = wait_for(lambda: (v := shown_pspi(browser)) is not None and v > rest_level + 1.0 and v, 120,
                         f"PSPI to rise above {rest_level:.2f} + 1 in the page")
        assert risen > rest_level + 1.0
        time.sleep(1.5)
        assert float(browser.find_element("id", "stim-value").text) == pytest.approx(1.0, abs=0.01)
        shot = Path(os.environ.get("PAINFACE_SCREENSHOT") or tmp_path / "serve_page.png")
        shot.parent.mkdir(parents=True, exist_ok=True)
        assert browser.save_screenshot(str(shot))
        shown = browser.execute_script("return window.painfaceState.shown")
        errors = browser.find_element("id", "message").text
    assert shown > 25 and errors == ""
    from matplotlib.image import imread

    img = imread(shot)
    assert img.shape[0] > 400 and img.shape[1] > 800
    face = img[80:500, 20:480, :3]  # the face canvas: a drawn face, not a blank panel
    assert face.std() > 0.05
