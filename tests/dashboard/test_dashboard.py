"""optuna-dashboard in Chromium on real studies made by LLMSampler (scripted server) and SOO.

The first screen of a trial page (1400x900, as a user's browser has it) must show who chose the
trial (``source``) and why (the rationale) without any scrolling, in the trial's note
(:func:`optuna_llm._dashboard.publish_choice`), and the full prompt and answer as artifacts.

The LLM study is made by ``LLMSampler(..., artifact_store=store)`` itself: the sampler writes
through :func:`optuna_llm._dashboard.record_choice`, as it does for every user.

Needs Debian's ``chromium`` (``apt-get install -y chromium``): Playwright's own browser download
does not work on these machines, so the test launches ``/usr/bin/chromium``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.error import URLError
from urllib.request import urlopen

import optuna
import pytest
from optuna.artifacts import FileSystemArtifactStore, get_all_artifact_meta
from playwright.sync_api import Locator, Page, sync_playwright

from optuna_llm._attrs import RATIONALE, SOURCE
from optuna_llm._dashboard import choice_note
from optuna_llm.objectives.toy import TOY_FUNCTIONS
from optuna_llm.samplers import LLMSampler, SOOSampler
from tests.helpers.llm_servers import Reply, ScriptedOpenAIServer, free_port, random_valid_responder

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
VIEWPORT = {"width": 1400, "height": 900}
DASHBOARD_CLI = str(Path(sys.executable).with_name("optuna-dashboard"))
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "dashboard"
RATIONALE_TEXT = (
    "x0 near 3 gave the lowest value so far; this probes the unexplored upper half of x1 "
    "while staying close to that basin."
)


def _responder() -> Any:
    """Random valid configurations, each with a rationale a user would want to read."""
    random_valid = random_valid_responder(0)

    def respond(request: dict[str, Any]) -> Reply:
        answer = json.loads(random_valid(request).content or "{}")
        answer["rationale"] = RATIONALE_TEXT
        return Reply(json.dumps(answer))

    return respond


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Path]]:
    """(dashboard URL, storage URL, artifact dir): an LLM study (id 1) and a SOO study (id 2)."""
    root = tmp_path_factory.mktemp("dashboard")
    url = f"sqlite:///{root}/studies.db"
    artifact_dir = root / "artifacts"
    artifact_dir.mkdir()
    store = FileSystemArtifactStore(str(artifact_dir))
    branin = TOY_FUNCTIONS["branin"]
    with ScriptedOpenAIServer(_responder()) as server:
        sampler = LLMSampler(
            "Minimise the Branin function.",
            base_url=server.base_url,
            api_key="test-key",
            model="scripted-model",
            seed=0,
            artifact_store=store,
        )
        study = optuna.create_study(storage=url, study_name="branin-llm", sampler=sampler)
        study.optimize(branin.objective, n_trials=3)
    study = optuna.create_study(storage=url, study_name="branin-soo", sampler=SOOSampler(seed=0))
    study.optimize(branin.objective, n_trials=5)

    port = free_port()
    proc = subprocess.Popen(
        [
            DASHBOARD_CLI,
            url,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--artifact-dir",
            str(artifact_dir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240  # its imports take minutes on a loaded 2-core box
        while True:
            try:
                with urlopen(f"{base}/api/studies", timeout=2):
                    break
            except (URLError, ConnectionError):
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail("optuna-dashboard did not start")
                time.sleep(0.3)
        yield base, url, artifact_dir
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def page() -> Iterator[Page]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser.new_page(viewport=VIEWPORT)
        browser.close()


def _open_trial(page: Page, base: str, study_id: int, number: int, shot: str) -> None:
    """Open a trial in "Trials (List)" as a user would, and keep a screenshot of it."""
    page.goto(f"{base}/dashboard/studies/{study_id}/trials?numbers={number}")
    page.get_by_text(f"Trial {number} (trial_id=").wait_for(timeout=30_000)
    page.get_by_text("User Attributes").wait_for()
    page.wait_for_load_state("networkidle")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / shot
    page.screenshot(path=str(path))  # the viewport only: what the user sees first
    print(f"screenshot: {path}")


def _seen_without_scrolling(locator: Locator) -> bool:
    """The element is painted inside the viewport: its centre is in the window and the
    element drawn there is it (not clipped by a scrolling box, not covered)."""
    return bool(
        locator.evaluate(
            """el => {
                const r = el.getBoundingClientRect();
                const x = r.left + Math.min(r.width / 2, 40), y = r.top + r.height / 2;
                if (r.width === 0 || x < 0 || y < 0 || x >= innerWidth || y >= innerHeight
                    || scrollY !== 0) return false;
                const hit = document.elementFromPoint(x, y);
                return hit !== null && (el === hit || el.contains(hit));
            }"""
        )
    )


def _user_attrs(page: Page) -> dict[str, str]:
    text = page.inner_text("main") if page.locator("main").count() else page.inner_text("body")
    attrs_text = text.split("User Attributes", 1)[1].split("Artifacts", 1)[0]
    attrs = {}
    for line in attrs_text.splitlines():
        key, _, value = line.strip().partition(" ")
        if key:
            attrs[key] = value
    return attrs


def test_llm_trial_first_screen_shows_who_and_why(
    dashboard: tuple[str, str, Path], page: Page
) -> None:
    base, url, artifact_dir = dashboard
    study = optuna.load_study(study_name="branin-llm", storage=url)
    trial = study.trials[1]
    assert trial.user_attrs[SOURCE] == "llm" and trial.user_attrs[RATIONALE] == RATIONALE_TEXT
    _open_trial(page, base, 1, 1, "llm_trial.png")

    # The note, at the top of the page: who chose the trial and why, without scrolling.
    note = page.get_by_role("heading", name="Note").locator("xpath=following-sibling::*[1]")
    source_line = note.locator("p", has_text="source:").first
    assert source_line.inner_text() == "source: llm"
    assert _seen_without_scrolling(source_line)
    rationale = note.locator("blockquote").first
    assert rationale.inner_text() == RATIONALE_TEXT
    assert _seen_without_scrolling(rationale)

    # The user-attrs box holds only short values now, and ``source`` shows in it unscrolled.
    attrs = _user_attrs(page)
    assert attrs["source"] == "llm"
    assert attrs["llm_prompt_tokens"] == str(trial.user_attrs["llm_prompt_tokens"])
    assert attrs["llm_completion_tokens"] == str(trial.user_attrs["llm_completion_tokens"])
    assert "llm_prompt" not in attrs and "llm_answer" not in attrs
    assert _seen_without_scrolling(page.get_by_text("source llm", exact=True).first)

    # The full prompt and answer: artifacts of the trial, listed and served by the dashboard.
    names = {m.filename: m for m in get_all_artifact_meta(trial, storage=study._storage)}
    assert set(names) == {"trial-1-prompt.txt", "trial-1-answer.txt"}
    page.get_by_text("trial-1-prompt.txt").first.wait_for()
    meta = names["trial-1-prompt.txt"]
    with urlopen(f"{base}/artifacts/1/{trial._trial_id}/{meta.artifact_id}", timeout=10) as r:
        prompt = r.read().decode()
    assert prompt.startswith("[system]") and "Branin" in prompt
    answer = (artifact_dir / names["trial-1-answer.txt"].artifact_id).read_text()
    assert json.loads(answer)["rationale"] == RATIONALE_TEXT
    assert "test-key" not in page.content()  # the API key never reaches storage
    assert "test-key" not in prompt and "test-key" not in answer


def test_note_is_written_once_per_trial_and_records_the_facts(
    dashboard: tuple[str, str, Path],
) -> None:
    _, url, _ = dashboard
    study = optuna.load_study(study_name="branin-llm", storage=url)
    for trial in study.trials:
        note = choice_note(study, trial._trial_id)
        assert note.startswith("**source:** `llm`"), note
        assert RATIONALE_TEXT in note and "**llm_prompt_tokens:**" in note
        assert f"trial-{trial.number}-prompt.txt" in note
        # One prompt and one answer per trial, however many times the sampler recorded it.
        assert len(get_all_artifact_meta(trial, storage=study._storage)) == 2


def test_soo_trial_shows_source_node_and_depth(
    dashboard: tuple[str, str, Path], page: Page
) -> None:
    base, url, _ = dashboard
    trial = optuna.load_study(study_name="branin-soo", storage=url).trials[4]
    _open_trial(page, base, 2, 4, "soo_trial.png")
    attrs = _user_attrs(page)
    assert attrs["source"] == "soo"
    assert attrs["node"] == trial.user_attrs["node"] and ":" in attrs["node"]
    assert attrs["depth"] == str(trial.user_attrs["depth"])
    assert _seen_without_scrolling(page.get_by_text("source soo", exact=True).first)
