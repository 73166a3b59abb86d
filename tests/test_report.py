"""`spar report`: the page's content, escaping, size and bad input; and the page itself in headless Chromium.

The browser tests need Debian's `chromium` and `chromium-driver` and the `selenium` package (in the `test`
extra; `.ci/run` installs the browser). Where one is missing they skip and say which; the rest always run.

Two runs feed the tests: a real loop run with scripted actor and refiner (no training: seconds, trees that
succeed and fail, pairs of both sources, RFT examples of both kinds), and a synthetic run directory
(spar/report/synthetic.py) with IFEval scores and model text that tries to close the script tag.
"""

import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from spar.backends.scripted import ScriptedBackend
from spar.config import load_config
from spar.report import update_run_report, write_report
from spar.report.build import gather
from spar.report.diff import new_text, old_text, word_diff
from spar.report.html import LEVELS, MARKER, render, unpack
from spar.report.synthetic import HOSTILE, make_run
from spar.selfplay.loop import Loop

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from test_loop_scripted import actor_reply, refiner_reply  # noqa: E402  (the scripted run's behaviour)

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture(scope="module")
def loop_run(tmp_path_factory):
    """A finished 2-iteration loop run (scripted models, training off): its directory."""
    out = tmp_path_factory.mktemp("loop")
    backends = {"actor": ScriptedBackend(respond=actor_reply, name="actor"),
                "refiner": ScriptedBackend(respond=refiner_reply, name="refiner")}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Loop, "backend", lambda self, role, name: backends[role])
        cfg = load_config(REPO / "tests/assets/loop.yaml",
                          [f"out_dir={out}", f"data.source={REPO / 'tests/assets/quote_instructions.jsonl'}",
                           "iterations=2", "judge.kind=llm", "judge.n=3", "search.prefill=true", "search.branch=2",
                           "search.select=1", "search.max_depth=2", "search.max_refinements=4",
                           "train.actor=false", "train.refiner=false"])
        Loop(cfg).run()
    return out / "loop"


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("syn") / "syn", trees=40, hostile=True)


def _cells(page: str, table: str) -> dict[tuple[str, str], str]:
    """{(iteration, key): data-value} of a summary table."""
    body = re.search(rf'<table id="{table}">(.*?)</table>', page, re.S).group(1)
    out = {}
    for t, row in re.findall(r'<tr data-iteration="(\d+)">(.*?)</tr>', body, re.S):
        for key, value in re.findall(r'<td data-key="([^"]+)" data-value="([^"]*)"', row):
            out[(t, key)] = value.replace("&quot;", '"')
    return out


# ---- without a browser ---------------------------------------------------------------------------------------

def test_word_diff_marks_changed_words_and_rebuilds_both_texts():
    ops = word_diff("The cat sat on the mat.", "The dog sat on the red mat!")
    assert ["-", "cat"] in ops and ["+", "dog"] in ops and ["+", "red "] in ops
    assert old_text(ops) == "The cat sat on the mat." and new_text(ops) == "The dog sat on the red mat!"
    assert ops.index(["-", "cat"]) < ops.index(["+", "dog"])  # deletions before insertions
    assert word_diff("", "") == [] and new_text(word_diff("", "a b")) == "a b"


def test_summary_numbers_are_the_manifests(loop_run):
    page = write_report(loop_run).read_text()
    manifest = json.loads((loop_run / "manifest.json").read_text())["iterations"]
    cells, scores, seconds = (_cells(page, "summary-data"), _cells(page, "summary-scores"),
                              _cells(page, "summary-seconds"))
    for t in ("0", "1"):
        m = manifest[t]
        expect = {"negatives": m["negatives"]["count"], "trees": m["search"]["count"],
                  "refinement_pairs": m["pairs"]["refinement_pairs"], "sampled_pairs": m["pairs"]["sampled_pairs"],
                  "refinement_edit_distance": m["pairs"]["refinement_edit_distance"],
                  "rft_refine": m["rft"]["refine"], "rft_judge_yes": m["rft"]["judge_yes"],
                  "rft_judge_no": m["rft"]["judge_no"], "truncated_responses": m["sample"]["truncated"]}
        for key, value in expect.items():
            assert json.loads(cells[(t, key)]) == value, key
        assert json.loads(cells[(t, "search_success")]) == m["search"]["succeeded"] / m["search"]["count"]
        before = manifest["base"]["eval"] if t == "0" else manifest["0"]["eval"]
        assert json.loads(scores[(t, "heldout_prompt_level_before")]) == before["scores"]["heldout_prompt_level"]
        assert json.loads(scores[(t, "heldout_prompt_level_after")]) == m["eval"]["scores"]["heldout_prompt_level"]
        assert json.loads(seconds[(t, "seconds_search")]) == m["search"]["seconds"]
    assert page.startswith("<!DOCTYPE html>\n" + MARKER)


def test_page_is_self_contained(loop_run):
    page = write_report(loop_run).read_text()
    # no address to fetch anything from: no src/href to anything but in-page anchors, and a CSP forbidding it
    assert not re.search(r'\b(?:src|href)="(?!#)', page)
    assert "default-src 'none'" in html.unescape(page) and "http://" not in page.replace("http://www.w3.org", "")
    assert "<script src" not in page and "<link" not in page


def test_model_text_never_becomes_markup(hostile_run):
    page = write_report(hostile_run).read_text()
    for payload in HOSTILE[:3]:
        assert payload not in page  # model text travels base64-encoded, never as HTML
    trees = unpack(re.search(r'id="data-trees-0">([^<]*)</script>', page).group(1))
    texts = [n.get("x") or new_text(n["o"]) for tree in trees for n in tree["n"]]
    assert any(HOSTILE[0] in t for t in texts)  # ...and reaches the viewer whole, to be shown as text


def test_markup_in_names_and_config_is_escaped(tmp_path):
    run = make_run(tmp_path / "r", trees=5)
    (run / "config.yaml").write_text('name: "<img src=x onerror=alert(1)>"\niterations: 2\n')
    page = write_report(run).read_text()
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page


def test_every_plot_is_drawn_with_ifeval_data(hostile_run):
    page = write_report(hostile_run).read_text()
    for name in ("heldout", "ifeval", "depth", "edit"):
        figure = re.search(rf'<figure class="plot" id="plot-{name}" data-drawn="(\d)">(.*?)</figure>', page, re.S)
        assert figure and figure.group(1) == "1" and "<svg" in figure.group(2), name
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids))  # four SVGs on one page share no element id


def test_experiments_of_the_run_are_in_its_report(tmp_path, capsys, loop_run):
    """`spar experiment refinement-accuracy RUN` writes into RUN/experiments/; the report shows its table and plot,
    with element ids of its own, and the table's text escaped."""
    from spar.cli import main

    run = Path(shutil.copytree(loop_run, tmp_path / "r"))  # its refiner is scripted: it judges again at once
    assert main(["experiment", "refinement-accuracy", str(run), "--judge-n", "1"]) == 0
    capsys.readouterr()
    bad = run / "experiments" / "mine"
    bad.mkdir()
    (bad / "table.txt").write_text("<b>not markup</b>")
    (bad / "plot.svg").write_text("no picture")
    page = write_report(run).read_text()
    section = re.search(r'<section class="experiment" id="experiment-refinement_accuracy">(.*?)</section>', page, re.S)
    table = (run / "experiments" / "refinement_accuracy" / "table.txt").read_text()
    assert section and html.escape(table, quote=False) in section.group(1) and "<svg" in section.group(1)
    assert "&lt;b&gt;not markup&lt;/b&gt;" in page and "<b>not markup" not in page
    assert "experiments/mine/plot.svg is not an SVG image" in page
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids))


def test_half_finished_run_reports_what_exists_and_names_the_rest(tmp_path):
    run = make_run(tmp_path / "r", trees=12, iterations=2)
    manifest = json.loads((run / "manifest.json").read_text())
    for stage in ("search", "pairs", "rft", "train_actor", "train_refiner", "eval"):
        del manifest["iterations"]["1"][stage]  # iteration 1 was killed during its search
    (run / "manifest.json").write_text(json.dumps(manifest))
    trees = (run / "iter_1" / "trees.jsonl").read_text().splitlines()
    (run / "iter_1" / "trees.jsonl.partial").write_text("\n".join(trees[:5]) + "\n" + trees[5][:40])  # torn line
    for f in ("trees.jsonl", "pairs.jsonl", "rft.jsonl"):
        (run / "iter_1" / f).unlink()
    (run / "iter_0" / "rft.jsonl").unlink()
    page = write_report(run).read_text()
    notes = re.search(r'<section id="notes">(.*?)</section>', page, re.S).group(1)
    assert "iteration 1 search: the stage did not finish; 5 record(s) of trees.jsonl.partial shown" in notes
    assert "unreadable line(s) of trees.jsonl.partial skipped" in notes
    assert "iteration 1: unfinished, stages not done: search, pairs" in notes
    assert "iteration 0 rft: rft.jsonl is missing" in notes
    assert json.loads(_cells(page, "summary-data")[("1", "trees")]) == 5  # counted from the partial file
    assert re.search(r'data-key="search_success"[^>]*class="partial"', page)  # ...and marked so
    assert unpack(re.search(r'id="data-trees-1">([^<]*)<', page).group(1))[4]["i"] == "s000004"


def test_run_without_manifest_or_config_still_reports(tmp_path):
    run = make_run(tmp_path / "r", trees=6, iterations=1)
    (run / "manifest.json").unlink()
    (run / "config.yaml").unlink()
    page = write_report(run).read_text()
    assert "manifest.json is missing" in page and "config.yaml is missing" in page
    assert json.loads(_cells(page, "summary-data")[("0", "trees")]) == 6


def test_big_texts_are_cut_to_fit_the_budget_and_flagged(tmp_path):
    run = make_run(tmp_path / "r", trees=150, iterations=1)
    full = render(gather(run))
    budget = len(full) // 2
    cut = render(gather(run), max_bytes=budget)
    assert len(cut) <= budget
    meta = unpack(re.search(r'id="data-meta">([^<]*)<', cut).group(1))
    assert tuple(meta["level"]) != LEVELS[0] and "texts are cut" in cut
    trees = unpack(re.search(r'id="data-trees-0">([^<]*)<', cut).group(1))
    assert any(n.get("cut") for tree in trees for n in tree["n"])


def _spar(*args):
    return subprocess.run([sys.executable, "-m", "spar.cli", "report", *map(str, args)], capture_output=True,
                          text=True, timeout=300)


def test_cli_bad_inputs_are_one_line_and_touch_nothing(tmp_path, loop_run):
    missing = _spar(tmp_path / "nope")
    assert missing.returncode == 2 and "not a directory" in missing.stderr and "Traceback" not in missing.stderr
    (tmp_path / "empty").mkdir()
    empty = _spar(tmp_path / "empty")
    assert empty.returncode == 2 and "not a run directory" in empty.stderr
    manifest = (loop_run / "manifest.json").read_bytes()
    clobber = _spar(loop_run, "--out", loop_run / "manifest.json")
    assert clobber.returncode == 2 and "not a spar report; refusing to overwrite" in clobber.stderr
    assert (loop_run / "manifest.json").read_bytes() == manifest
    ok = _spar(loop_run, "--out", tmp_path / "r.html")
    assert ok.returncode == 0 and (tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>\n" + MARKER)
    assert _spar(loop_run, "--out", tmp_path / "r.html").returncode == 0  # a report may be rewritten
    bad_size = _spar(loop_run, "--out", tmp_path / "s.html", "--max-mb", "0")
    assert bad_size.returncode == 2 and "--max-mb 0.0: must be a positive size" in bad_size.stderr


def test_damaged_manifest_and_lines_are_named_not_fatal(tmp_path):
    run = make_run(tmp_path / "r", trees=6, iterations=1)
    (run / "manifest.json").write_text("{ not json")
    with open(run / "iter_0" / "pairs.jsonl", "a") as f:
        f.write("garbage line\n[1, 2]\n")
    page = write_report(run).read_text()
    assert "manifest.json is unreadable" in page and "iteration 0 pairs: 2 unreadable line(s) of pairs.jsonl" in page


def test_loop_writes_the_report_after_each_iteration(loop_run):
    """`spar run` leaves runs/<name>/report.html (written after the last iteration's eval)."""
    page = (loop_run / "report.html").read_text()
    assert MARKER in page and 'id="data-trees-1"' in page


def test_a_failing_report_only_warns(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("spar.report.html.render", lambda *a, **k: 1 / 0)
    run = make_run(tmp_path / "r", trees=3, iterations=1)
    assert update_run_report(run) is None
    assert "warning: could not write the report" in capsys.readouterr().err


# ---- in a real browser ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    # CI sets SPAR_REQUIRE_BROWSER: there a missing browser fails the test instead of skipping it
    missing = pytest.fail if os.environ.get("SPAR_REQUIRE_BROWSER") else pytest.skip
    if not (CHROMIUM and DRIVER):
        missing("chromium and chromedriver are not installed (apt-get install -y chromium chromium-driver)")
    try:
        from selenium import webdriver
    except ImportError:
        missing("selenium is not installed (pip install selenium, or the test extra: pip install -e '.[test]')")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1300,1000",
                f"--user-data-dir={tempfile.mkdtemp(prefix='spar-chromium-')}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def _open(driver, page: Path, tab: str = ""):
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get_log("browser"), driver.get_log("performance")  # forget earlier pages' entries
    driver.get(page.resolve().as_uri() + (f"#{tab}" if tab else ""))
    WebDriverWait(driver, 30).until(lambda d: d.execute_script("return document.body.dataset.ready"))
    assert driver.execute_script("return document.body.dataset.ready") == "1"


def _requests(driver) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg["method"] == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
    return urls


def _severe(driver) -> list:
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def test_report_in_chromium(browser, loop_run, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    page = write_report(loop_run)
    _open(browser, page)
    manifest = json.loads((loop_run / "manifest.json").read_text())["iterations"]
    # the table's numbers, as the browser shows them, are the manifest's
    for t in ("0", "1"):
        row = f'#summary-data tr[data-iteration="{t}"]'
        shown = lambda key: browser.find_element(By.CSS_SELECTOR, f'{row} td[data-key="{key}"]').text  # noqa: E731
        assert shown("negatives") == str(manifest[t]["negatives"]["count"])
        assert shown("trees") == str(manifest[t]["search"]["count"])
        assert shown("refinement_pairs") == str(manifest[t]["pairs"]["refinement_pairs"])
        assert shown("sampled_pairs") == str(manifest[t]["pairs"]["sampled_pairs"])
    # every plot is there: drawn, or (no IFEval data in this run) saying why not
    figures = browser.find_elements(By.CSS_SELECTOR, "figure.plot")
    assert len(figures) == 4
    for f in figures:
        assert f.find_elements(By.TAG_NAME, "svg") or "IFEval" in f.text
    assert len(browser.find_elements(By.CSS_SELECTOR, "figure.plot svg")) >= 3

    # trees: a filter hides the failed ones
    browser.find_element(By.CSS_SELECTOR, '#tabs button[data-tab="trees"]').click()
    WebDriverWait(browser, 10).until(lambda d: d.execute_script("return document.body.dataset.treesReady"))
    trees = [json.loads(line) for line in (loop_run / "iter_1" / "trees.jsonl").read_text().splitlines()]
    count = lambda: int(browser.find_element(By.ID, "tree-count").get_attribute("data-count"))  # noqa: E731
    assert count() == len(trees) == len(browser.find_elements(By.CSS_SELECTOR, "#tree-list .tree"))
    Select(browser.find_element(By.ID, "tree-status")).select_by_value("ok")
    succeeded = sum(t["success"] for t in trees)
    assert 0 < succeeded < len(trees) and count() == succeeded
    visible = browser.find_elements(By.CSS_SELECTOR, "#tree-list .tree")
    assert len(visible) == succeeded and all(v.get_attribute("data-success") == "1" for v in visible)
    # clicking a tree expands it; the accepted refinement shows as a diff against its parent
    tree = visible[0]
    tree.find_element(By.CSS_SELECTOR, ".tree-head").click()
    assert tree.find_element(By.CSS_SELECTOR, ".tree-body").is_displayed()
    diff = tree.find_element(By.CSS_SELECTOR, ".node.open .diff")
    assert diff.find_elements(By.TAG_NAME, "ins") and diff.find_elements(By.TAG_NAME, "del")
    # root "A plain note." -> refinement '"A quoted answer."'
    assert {"quoted", "answer"} <= {e.text for e in diff.find_elements(By.TAG_NAME, "ins")}
    assert {"plain", "note"} <= {e.text for e in diff.find_elements(By.TAG_NAME, "del")}
    # the votes' critiques open on a click (their data block is decoded then)
    votes = tree.find_element(By.CSS_SELECTOR, ".node.open details.votes")
    votes.find_element(By.TAG_NAME, "summary").click()
    WebDriverWait(browser, 5).until(lambda d: d.execute_script("return document.body.dataset.votesReady"))
    assert "double quotes" in votes.text and "no" in votes.text
    # a closed node opens on a click and shows its votes and critique
    closed = tree.find_elements(By.CSS_SELECTOR, ".node:not(.open) > .node-head")
    if closed:
        closed[0].click()
        assert closed[0].find_element(By.XPATH, "..").find_element(By.CSS_SELECTOR, ".node-body").is_displayed()
    # text search
    Select(browser.find_element(By.ID, "tree-status")).select_by_value("all")
    browser.find_element(By.ID, "tree-q").send_keys("no-such-text-anywhere")
    WebDriverWait(browser, 5).until(lambda d: count() == 0)
    # pairs: chosen vs rejected as a diff
    browser.find_element(By.CSS_SELECTOR, '#tabs button[data-tab="pairs"]').click()
    WebDriverWait(browser, 10).until(lambda d: d.execute_script("return document.body.dataset.pairsReady"))
    pair = browser.find_element(By.CSS_SELECTOR, "#pair-list .pair")
    pair.find_element(By.CSS_SELECTOR, ".pair-head").click()
    assert pair.find_elements(By.CSS_SELECTOR, ".diff ins") and pair.find_elements(By.CSS_SELECTOR, "li code")
    assert "null" not in pair.find_element(By.CSS_SELECTOR, ".pair-body").text  # no empty part shown as "null"
    browser.find_element(By.CSS_SELECTOR, '#tabs button[data-tab="rft"]').click()
    WebDriverWait(browser, 10).until(lambda d: d.execute_script("return document.body.dataset.rftReady"))
    assert {g.get_attribute("data-kind") for g in browser.find_elements(By.CSS_SELECTOR, ".rft-group")} == \
        {"refine", "judge"}

    shot = tmp_path / "report.png"
    browser.save_screenshot(str(shot))
    print(f"screenshot: {shot}")
    assert shot.stat().st_size > 10_000
    assert _severe(browser) == []
    assert [u for u in _requests(browser) if not u.startswith("file://")] == []


def test_hostile_text_is_shown_not_run_in_chromium(browser, hostile_run, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    _open(browser, write_report(hostile_run), "trees")
    browser.find_element(By.ID, "tree-q").send_keys("window.__pwned")
    WebDriverWait(browser, 5).until(
        lambda d: d.find_element(By.ID, "tree-count").get_attribute("data-count") not in (None, "40"))
    tree = browser.find_element(By.CSS_SELECTOR, "#tree-list .tree")
    tree.find_element(By.CSS_SELECTOR, ".tree-head").click()
    for node in tree.find_elements(By.CSS_SELECTOR, ".node:not(.open) > .node-head"):
        node.click()
    assert HOSTILE[0] in tree.text and HOSTILE[1] in tree.text  # shown as the text it is
    assert browser.execute_script("return window.__pwned") is None
    assert browser.find_elements(By.CSS_SELECTOR, "main img") == []
    browser.save_screenshot(str(tmp_path / "hostile.png"))
    assert _severe(browser) == []
