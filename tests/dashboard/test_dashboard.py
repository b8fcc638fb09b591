"""optuna-dashboard in Chromium on real studies made by LLMSampler (scripted server) and SOO.

Needs Debian's ``chromium`` (``apt-get install -y chromium``): Playwright's own browser download
does not work on these machines, so the test launches ``/usr/bin/chromium``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.error import URLError
from urllib.request import urlopen

import optuna
import pytest
from playwright.sync_api import Page, sync_playwright

from optuna_llm.objectives.toy import TOY_FUNCTIONS
from optuna_llm.samplers import LLMSampler, SOOSampler
from tests.helpers.llm_servers import ScriptedOpenAIServer, free_port, random_valid_responder

optuna.logging.set_verbosity(optuna.logging.WARNING)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DASHBOARD_CLI = str(Path(sys.executable).with_name("optuna-dashboard"))
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "dashboard"


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(dashboard URL, storage URL): an LLM study (id 1) and a SOO study (id 2), served."""
    url = f"sqlite:///{tmp_path_factory.mktemp('dashboard')}/studies.db"
    branin = TOY_FUNCTIONS["branin"]
    with ScriptedOpenAIServer(random_valid_responder(0)) as server:
        sampler = LLMSampler(
            "Minimise the Branin function.",
            base_url=server.base_url,
            api_key="test-key",
            model="scripted-model",
            seed=0,
        )
        study = optuna.create_study(storage=url, study_name="branin-llm", sampler=sampler)
        study.optimize(branin.objective, n_trials=3)
    study = optuna.create_study(storage=url, study_name="branin-soo", sampler=SOOSampler(seed=0))
    study.optimize(branin.objective, n_trials=5)

    port = free_port()
    proc = subprocess.Popen(
        [DASHBOARD_CLI, url, "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urlopen(f"{base}/api/studies", timeout=2):
                    break
            except (URLError, ConnectionError):
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail("optuna-dashboard did not start")
                time.sleep(0.3)
        yield base, url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def page() -> Iterator[Page]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser.new_page(viewport={"width": 1280, "height": 900})
        browser.close()


def _trial_page(page: Page, base: str, study_id: int, number: int, shot: str) -> dict[str, str]:
    """Open a trial in "Trials (List)", keep a screenshot, return its user attributes."""
    page.goto(f"{base}/dashboard/studies/{study_id}/trials?numbers={number}")
    page.get_by_text(f"Trial {number} (trial_id=").wait_for(timeout=30_000)
    page.get_by_text("User Attributes").wait_for()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / shot
    page.screenshot(path=str(path))
    print(f"screenshot: {path}")
    text = page.inner_text("main") if page.locator("main").count() else page.inner_text("body")
    attrs_text = text.split("User Attributes", 1)[1]
    attrs = {}
    for line in attrs_text.splitlines():
        key, _, value = line.strip().partition(" ")
        if key:
            attrs[key] = value
    return attrs


def test_llm_trial_shows_source_rationale_prompt_and_tokens(
    dashboard: tuple[str, str], page: Page
) -> None:
    base, url = dashboard
    expected = optuna.load_study(study_name="branin-llm", storage=url).trials[1].user_attrs
    attrs = _trial_page(page, base, 1, 1, "llm_trial.png")
    assert attrs["source"] == "llm"
    assert attrs["rationale"] == expected["rationale"] == "random but valid"
    assert attrs["llm_prompt_tokens"] == str(expected["llm_prompt_tokens"])
    assert attrs["llm_completion_tokens"] == str(expected["llm_completion_tokens"])
    assert attrs["llm_prompt"].startswith("[system]")
    assert '"rationale"' in attrs["llm_answer"]
    assert "test-key" not in page.content()  # the API key never reaches storage


def test_soo_trial_shows_node_and_depth(dashboard: tuple[str, str], page: Page) -> None:
    base, url = dashboard
    trial = optuna.load_study(study_name="branin-soo", storage=url).trials[4]
    attrs = _trial_page(page, base, 2, 4, "soo_trial.png")
    assert attrs["source"] == "soo"
    assert attrs["node"] == trial.user_attrs["node"] and ":" in attrs["node"]
    assert attrs["depth"] == str(trial.user_attrs["depth"])
