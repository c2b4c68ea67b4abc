"""The report, second version: the study's claims judged from the run, the
same seed giving the same report, a quiet console, a folder that holds
exactly what the page shows, numbers from the kept model, the run's context
and a self-contained page."""

import base64
import copy
import hashlib
import io
import itertools
import json
import logging
import math
import os
import re
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skdigits import _claims
from skdigits._claims import CONFIRMED, NOT_CONFIRMED, NOT_MEASURED, PARTLY
from skdigits.cli import main

# ---------------------------------------------------------------- claims


def _fast_flat(n_epochs, final, start=0.3):
    """A curve that falls from ``start`` at epoch 1 to about ``final`` within
    a few epochs and then is flat."""
    e = np.arange(n_epochs)
    return final + (start - final) * np.exp(-1.5 * e)


def _linear(n_epochs, final, start=0.3):
    """A curve that falls at a constant rate from ``start`` to ``final``."""
    return np.linspace(start, final, n_epochs)


def _facts(kind):
    """Made-up facts under which every claim of the study holds."""
    n = 12
    finals = np.linspace(0.02, 0.06, 10)
    if kind == "digits":
        finals[[8, 9, 5]] = 0.20, 0.18, 0.16  # 8 and 9 stay high
        finals[[0, 1]] = 0.005, 0.006  # 0 and 1 lowest: converge first
        acc, test_acc = 0.995, 0.98
    else:
        finals[[6, 2, 4]] = 0.25, 0.22, 0.20  # Shirt, Pullover, Coat
        acc, test_acc = 0.95, 0.89
    ovr = np.column_stack([_fast_flat(n, f) for f in finals])
    cm = np.diag(np.full(10, 900))
    if kind == "digits":
        cm[4, 8] = cm[8, 4] = 9
        cm[0, 6] = cm[6, 0] = 8
    else:
        cm[6, 0] = cm[0, 6] = 50
    grid_proba = np.full(100, 0.9)
    grid_right = np.ones(100, bool)
    if kind == "digits":
        grid_proba[[3, 40]] = 0.3, 0.45  # two unsure images
        grid_right[3] = False
    pred_right = np.ones(100, bool)
    pred_right[:3 if kind == "digits" else 8] = False
    val = 0.97 - 0.1 * np.exp(-0.5 * np.arange(n))  # still rising at the end
    return {
        "names": [str(i) for i in range(10)] if kind == "digits" else
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
         "Shirt", "Sneaker", "Bag", "Ankle boot"],
        "ovr_loss_per_class": ovr.tolist(),
        "mlp_loss": _fast_flat(n, 0.3, 1.0).tolist(),
        "mlp_train_accuracy": np.linspace(0.9, acc, n).tolist(),
        "mlp_val_accuracy": val.tolist(),
        "kept_epoch": n,
        "kept_train_accuracy": acc,
        "kept_train_loss": 0.05 if kind == "digits" else 0.25,
        "test_accuracy": test_acc,
        "confusion": cm.tolist(),
        "grid_labels": [i % 10 for i in range(100)],
        "grid_label_proba": grid_proba.tolist(),
        "grid_right": grid_right.tolist(),
        "predictions_right": pred_right.tolist(),
    }


def _verdicts(facts, **kw):
    return {c["id"]: c["verdict"] for c in _claims.judge(facts, **kw)}


@pytest.fixture
def facts():
    return {"digits": _facts("digits"), "fashion": _facts("fashion")}


def test_every_claim_holds_on_facts_made_to_hold_them(facts):
    claims = _claims.judge(facts)
    assert [c["id"] for c in claims] == list(_claims.CLAIMS)
    for c in claims:
        assert c["verdict"] == CONFIRMED, c
        assert c["claim"] == _claims.CLAIMS[c["id"]] and c["evidence"]
        assert "note" not in c
    # the evidence holds the figures that decide
    by_id = {c["id"]: c for c in claims}
    assert "2 of the grid's 100 images" in by_id["1"]["evidence"]
    assert "8<->4: 18 test mistakes, rank 1" in by_id["4b"]["evidence"]
    assert "97 of 100 right" in by_id["4a"]["evidence"]


def _set_final(facts, kind, label, final, shape=_fast_flat):
    curves = np.asarray(facts[kind]["ovr_loss_per_class"])
    curves[:, label] = shape(len(curves), final)
    facts[kind]["ovr_loss_per_class"] = curves.tolist()


def test_claim_1_flips_with_the_unsure_images(facts):
    facts["digits"]["grid_label_proba"][40] = 0.9  # one left
    assert _verdicts(facts)["1"] == PARTLY
    facts["digits"]["grid_label_proba"][3] = 0.9
    facts["digits"]["grid_right"][3] = True
    assert _verdicts(facts)["1"] == NOT_CONFIRMED
    facts["digits"]["grid_right"][70] = False  # a wrong one counts even if sure
    assert _verdicts(facts)["1"] == PARTLY


def test_fast_then_flat_flips_when_curves_fall_steadily(facts):
    for j in range(4):  # 6 of 10 labels still fast then flat: partly
        _set_final(facts, "digits", j, 0.01 + 0.001 * j, _linear)
    assert _verdicts(facts)["2a"] == PARTLY
    for j in range(4, 10):
        _set_final(facts, "digits", j, 0.01 + 0.001 * j, _linear)
    assert _verdicts(facts)["2a"] == NOT_CONFIRMED
    assert _verdicts(facts)["3a"] == CONFIRMED  # the other dataset is unchanged
    facts["fashion"]["mlp_loss"] = _linear(12, 0.3, 1.0).tolist()
    assert _verdicts(facts)["7"] == PARTLY  # one dataset of two
    facts["digits"]["mlp_loss"] = _linear(12, 0.3, 1.0).tolist()
    assert _verdicts(facts)["7"] == NOT_CONFIRMED


def test_hard_digits_flip_with_their_rank_and_their_late_fall(facts):
    _set_final(facts, "digits", 9, 0.001)
    assert _verdicts(facts)["2b"] == PARTLY
    _set_final(facts, "digits", 8, 0.002)
    assert _verdicts(facts)["2b"] == NOT_CONFIRMED
    # high but still falling over the second half: not "does not fall"
    fresh = {"digits": _facts("digits")}
    _set_final(fresh, "digits", 8, 0.2, lambda n, f: _linear(n, f, start=0.9))
    claim = {c["id"]: c for c in _claims.judge(fresh)}["2b"]
    assert claim["verdict"] == PARTLY
    assert "8 ranks 1 of 10" in claim["evidence"]
    # too few epochs to say whether it falls
    fresh["digits"]["ovr_loss_per_class"] = fresh["digits"]["ovr_loss_per_class"][:3]
    assert _verdicts(fresh)["2b"] == NOT_MEASURED


def test_early_convergence_flips_with_the_order(facts):
    _set_final(facts, "digits", 0, 0.045)  # 0 no longer among the earliest
    assert _verdicts(facts)["2c"] == PARTLY
    _set_final(facts, "digits", 1, 0.046)
    assert _verdicts(facts)["2c"] == NOT_CONFIRMED


def test_fashion_hard_labels_and_the_name_mix_up(facts):
    _set_final(facts, "fashion", 4, 0.01)  # Coat easy
    claims = {c["id"]: c for c in _claims.judge(facts)}
    assert claims["3b"]["verdict"] == PARTLY
    assert "Coat ranks 10 of 10" in claims["3b"]["evidence"]
    assert "Sneaker (label 7), named in the study, ranks" in claims["3b"]["evidence"]
    for j in (6, 2):
        _set_final(facts, "fashion", j, 0.011 + j * 1e-4)
    assert _verdicts(facts)["3b"] == NOT_CONFIRMED
    assert "label 4 is Coat" in _claims.NAME_NOTE


@pytest.mark.parametrize("n_right, verdict", [(97, CONFIRMED), (90, CONFIRMED),
                                              (89, PARTLY), (51, PARTLY),
                                              (50, NOT_CONFIRMED)])
def test_most_predictions_right_at_the_stated_thresholds(facts, n_right, verdict):
    facts["digits"]["predictions_right"] = [i < n_right for i in range(100)]
    assert _verdicts(facts)["4a"] == verdict


def test_confusions_flip_with_the_pair_ranks(facts):
    cm = np.asarray(facts["digits"]["confusion"])
    for a, b in ((2, 7), (3, 5), (1, 7), (5, 6), (4, 9)):
        cm[a, b] = 17  # five pairs between 4<->8 (18) and 0<->6 (16)
    facts["digits"]["confusion"] = cm.tolist()
    assert _verdicts(facts)["4b"] == PARTLY
    cm[4, 8] = cm[8, 4] = 0
    facts["digits"]["confusion"] = cm.tolist()
    claim = {c["id"]: c for c in _claims.judge(facts)}["4b"]
    assert claim["verdict"] == NOT_CONFIRMED
    assert "8<->4: 0 test mistakes" in claim["evidence"]


def test_fashion_against_digits_flips_when_swapped(facts):
    swapped = {"digits": facts["fashion"], "fashion": facts["digits"]}
    v = _verdicts(swapped)
    assert v["5"] == NOT_CONFIRMED and v["6"] == NOT_CONFIRMED
    facts["fashion"]["test_accuracy"] = 0.99  # more grid mistakes, but better
    assert _verdicts(facts)["5"] == PARTLY


def test_accuracy_rising_and_the_zoom(facts):
    val = facts["fashion"]["mlp_val_accuracy"]
    facts["fashion"]["mlp_val_accuracy"] = val[::-1]  # falls
    v = _verdicts(facts)
    assert v["8"] == PARTLY  # training accuracy still rises
    assert v["9"] == PARTLY  # the digits still improve, Fashion-MNIST does not
    facts["digits"]["mlp_val_accuracy"] = [0.98] * 12
    assert _verdicts(facts)["9"] == NOT_CONFIRMED


def test_claims_without_their_dataset_are_not_measured(facts):
    only_digits = _verdicts({"digits": facts["digits"]})
    for key in ("3a", "3b", "5", "6", "8"):
        assert only_digits[key] == NOT_MEASURED
    assert only_digits["4b"] == CONFIRMED and only_digits["7"] == CONFIRMED
    only_fashion = _verdicts({"fashion": facts["fashion"]})
    for key in ("1", "2a", "2b", "2c", "4a", "4b", "5", "6"):
        assert only_fashion[key] == NOT_MEASURED


def test_too_few_epochs_are_not_measured(facts):
    for f in facts.values():
        f["ovr_loss_per_class"] = f["ovr_loss_per_class"][:3]
        f["mlp_loss"] = f["mlp_loss"][:3]
        f["mlp_val_accuracy"] = f["mlp_val_accuracy"][:3]
    v = _verdicts(facts)
    assert v["2a"] == v["3a"] == v["2b"] == v["7"] == v["9"] == NOT_MEASURED
    # which label converges first, and which stay high, need a curve too:
    # with one epoch 2c was "confirmed" by the order of a tie
    assert v["2c"] == v["3b"] == NOT_MEASURED


def test_numpy_figures_count_like_python_ones(facts):
    """Claims 5 and 6 count the conditions that hold: with NumPy scalars a
    sum of booleans stayed a boolean, and 'both' read as 'partly'."""
    for f in facts.values():
        for key in ("test_accuracy", "kept_train_accuracy", "kept_train_loss"):
            f[key] = np.float64(f[key])
    v = _verdicts(facts)
    assert v["5"] == CONFIRMED and v["6"] == CONFIRMED


def test_verdicts_on_the_sample_say_so(facts):
    claims = _claims.judge(facts, sample=True)
    assert all("bundled sample" in c["note"] for c in claims)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), verdicts=st.lists(st.sampled_from(_claims.VERDICTS),
                                          max_size=20))
def test_verdict_counts_come_in_one_order(data, verdicts):
    claims = [{"verdict": v} for v in verdicts]
    counts = _claims.verdict_counts(claims)
    names = [v for v, _ in counts]
    # the order of VERDICTS, the judged verdicts always, "not measured" if any
    assert names == [v for v in _claims.VERDICTS if v in names]
    assert names[:3] == [CONFIRMED, PARTLY, NOT_CONFIRMED]
    assert (NOT_MEASURED in names) == (NOT_MEASURED in verdicts)
    assert dict(counts) == {v: verdicts.count(v) for v in names}
    # whatever order the claims come in
    shuffled = data.draw(st.permutations(claims))
    assert _claims.format_counts(shuffled) == _claims.format_counts(claims)


@settings(max_examples=60, deadline=None)
@given(drops=st.lists(st.floats(0.0, 1.0), min_size=2, max_size=30),
       scale=st.floats(0.1, 100.0), shift=st.floats(-10.0, 10.0))
def test_fall_shape_is_the_share_of_the_fall(drops, scale, shift):
    # a decreasing curve from 1: each epoch removes a share of what is left
    curve, level = [], 1.0
    for d in drops:
        curve.append(level)
        level *= 1 - 0.99 * d
    if curve[0] - curve[-1] < 1e-6:
        return
    head, tail = _claims.fall_shape(curve)
    n = len(curve)
    h = max(2, math.ceil(0.25 * n))
    m = math.ceil(n / 2)
    assert head == pytest.approx((curve[0] - curve[h - 1]) / (curve[0] - curve[-1]))
    assert tail == pytest.approx((curve[m - 1] - curve[-1]) / (curve[0] - curve[-1]))
    assert 0 <= head <= 1 + 1e-12 and 0 <= tail <= 1 + 1e-12
    # the shares do not depend on the loss's units
    moved = [scale * c + shift for c in curve]
    assert _claims.fall_shape(moved) == pytest.approx((head, tail))


def test_a_curve_that_does_not_fall_has_no_shape():
    assert all(math.isnan(v) for v in _claims.fall_shape([0.7, 0.8]))
    assert all(math.isnan(v) for v in _claims.fall_shape([0.7]))


# ---------------------------------------------------------------- report runs


def _run(out, *extra, dataset="digits", max_iter="4"):
    return main(["report", "--sample", "--dataset", dataset, "--out", str(out),
                 "--max-iter", max_iter, *extra])


def _stable(report):
    """report.json without what changes from run to run: the date and the
    timings."""
    report = copy.deepcopy(report)
    del report["run"]["date"], report["timings"]
    return report


def test_same_seed_same_report(tmp_path, capsys):
    assert _run(tmp_path / "a", "-q", dataset="both") == 0
    assert _run(tmp_path / "b", "-q", dataset="both") == 0
    a = json.loads((tmp_path / "a" / "report.json").read_text())
    b = json.loads((tmp_path / "b" / "report.json").read_text())
    assert _stable(a) == _stable(b)
    assert {c["verdict"] for c in a["claims"]} <= set(_claims.VERDICTS)
    for name in a["files"]:
        if name.endswith(".png"):
            assert (tmp_path / "a" / name).read_bytes() == \
                (tmp_path / "b" / name).read_bytes(), name
    # another seed gives another report
    assert _run(tmp_path / "c", "-q", "--seed", "3", dataset="both") == 0
    c = json.loads((tmp_path / "c" / "report.json").read_text())
    assert c["datasets"][0]["facts"] != a["datasets"][0]["facts"]


@pytest.mark.full_data
def test_same_seed_same_report_on_the_full_data(tmp_path, capsys, data_home):
    for name in ("a", "b"):
        assert main(["report", "--data-home", str(data_home), "--dataset",
                     "digits", "--max-iter", "3", "-q",
                     "--out", str(tmp_path / name)]) == 0
    a = json.loads((tmp_path / "a" / "report.json").read_text())
    b = json.loads((tmp_path / "b" / "report.json").read_text())
    assert _stable(a) == _stable(b)
    assert a["datasets"][0]["n_train"] == 60000
    # the data files are named with their SHA-256
    files = a["datasets"][0]["files"]
    assert len(files) == 4
    for f in files:
        with open(f["path"], "rb") as fh:
            assert hashlib.sha256(fh.read()).hexdigest() == f["sha256"]
    page = (tmp_path / "a" / "index.html").read_text()
    assert files[0]["sha256"] in page and files[0]["path"] in page


def _lines(text):
    """Lines as a terminal keeps them: a progress bar redraws its line."""
    return [ln for ln in text.split("\n") if ln.strip()]


#: One fit's line when stderr is not a terminal: what it ran and why it
#: stopped, then its time.
FIT_LINE = re.compile(r"(MNIST digits|Fashion-MNIST), (one-vs-rest softmax|MLP|"
                      r"second MLP): (\d+ epochs|stopped early at epoch \d+)"
                      r"(, keeps epoch \d+)? \(\d+\.\d\d s\)")


def test_console_without_a_terminal_is_one_line_per_fit(tmp_path, capsys):
    """A pipe, a log file or CI gets no progress bars (each redraw would be
    kept): one line per fit, and the report in at most 20 lines."""
    assert _run(tmp_path / "r", dataset="both") == 0
    out, err = capsys.readouterr()
    assert "\r" not in out + err and "%|" not in err
    lines = _lines(out) + _lines(err)
    assert len(lines) <= 20, lines
    assert not [ln for ln in lines if "Epoch" in ln]
    fits = [ln for ln in _lines(err) if FIT_LINE.fullmatch(ln)]
    assert len(fits) == 5, err  # claim 1's second MLP included
    # which says what it is for, before it trains
    why = ("MNIST digits: for claim 1, a second MLP rates the 100 grid images it "
           "never saw")
    assert err.index(why) < err.index("MNIST digits, second MLP: ")
    assert "claims:" in out and "report written" in out
    # within 80 columns, but for the folder's path
    assert all(len(ln) <= 80 for ln in lines if "report written" not in ln), lines


class _Terminal(io.StringIO):
    """stderr as a terminal: progress bars draw on it."""

    def isatty(self):
        return True


def _draws(text):
    """Every state a terminal showed: each line and each redraw of it."""
    return [p.rstrip() for ln in text.split("\n") for p in ln.split("\r")
            if p.strip()]


def _screen(text):
    """The lines a terminal keeps: the last redraw of each."""
    return [ln.split("\r")[-1].rstrip() for ln in text.split("\n")
            if ln.split("\r")[-1].strip()]


def test_bars_end_where_training_stopped_and_fit_80_columns(tmp_path, capsys,
                                                            monkeypatch):
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setenv("COLUMNS", "80")
    out = tmp_path / "r"
    assert main(["report", "--sample", "--dataset", "digits", "--out", str(out)]) == 0
    mlp = json.loads((out / "report.json").read_text())["datasets"][0]["models"]["mlp"]
    assert mlp["kept_epoch"] < mlp["epochs"] < 191  # stopped early, as in the issue
    text = terminal.getvalue()
    draws = _draws(text)
    assert all(len(p) <= 80 for p in draws), [p for p in draws if len(p) > 80]
    bars = [p for p in draws if "%|" in p]
    assert bars and all(len(p.split("|")[1]) >= 10 for p in bars), bars
    # no bar is left part way: each ends saying how its fit ended
    screen = _screen(text)
    assert not [ln for ln in screen if "%|" in ln]
    assert len([ln for ln in screen if FIT_LINE.fullmatch(ln)]) == 3
    assert any(ln.startswith(f"MNIST digits, MLP: stopped early at epoch "
                             f"{mlp['epochs']}, keeps epoch {mlp['kept_epoch']} (")
               for ln in screen), screen


@pytest.mark.parametrize("terminal", [True, False])
def test_the_estimators_bar_only_on_a_terminal(terminal, monkeypatch):
    from skdigits import MLPClassifier
    from skdigits.datasets import load_mnist

    X, y = load_mnist("digits", "train", sample=True, return_X_y=True)
    stream = _Terminal() if terminal else io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    monkeypatch.setenv("COLUMNS", "80")
    log = logging.getLogger("skdigits")
    saved = log.handlers[:], log.level
    try:
        model = MLPClassifier(early_stopping=True, n_iter_no_change=2, max_iter=30,
                              verbose=2, random_state=0).fit(X[:1000] / 255.0, y[:1000])
    finally:
        log.handlers[:], log.level = saved
    text = stream.getvalue()
    assert model.n_iter_ < 30
    kept = int(np.argmax(model.validation_scores_)) + 1
    end = (f"MLPClassifier: stopped early at epoch {model.n_iter_}"
           + (f", keeps epoch {kept}" if kept != model.n_iter_ else ""))
    if terminal:
        assert end in _screen(text) and all(len(p) <= 80 for p in _draws(text))
    else:  # nothing redrawn (verbose's per-epoch lines go to logging)
        assert "\r" not in text and "%|" not in text and end not in text


def test_quiet_is_one_line_per_fit(tmp_path, capsys):
    assert _run(tmp_path / "r", "--quiet", dataset="both") == 0
    out, err = capsys.readouterr()
    assert err == ""
    lines = _lines(out)
    assert len(lines) == 6 and lines[-1].startswith("report written")
    assert "(12 PNG files beside it)" in lines[-1]
    assert all("bundled sample" in ln and "epochs in" in ln for ln in lines[:4])
    assert lines[4].startswith("claims: ")  # the counts stay


def test_verdict_counts_in_one_order_quiet_or_not(tmp_path, capsys, monkeypatch):
    real = _claims.judge

    def judge(facts, **kw):  # verdicts in the reverse of VERDICTS' order
        claims = real(facts, **kw)
        for c, v in zip(claims, itertools.cycle(_claims.VERDICTS[::-1])):
            c["verdict"] = v
        return claims

    monkeypatch.setattr(_claims, "judge", judge)
    line = ("3 confirmed, 3 partly confirmed, 3 not confirmed, 4 not measured")
    for extra in ((), ("-q",)):
        assert _run(tmp_path / "r", *extra, max_iter="2") == 0
        out = capsys.readouterr().out
        assert f"claims: {line}\n" in out
        assert f"Verdicts: {line}." in (tmp_path / "r" / "index.html").read_text()


def test_verbose_logs_each_epoch_instead_of_bars(tmp_path, capsys):
    assert _run(tmp_path / "r", "-v") == 0
    err = capsys.readouterr().err
    # 4 epochs of the one-vs-rest model, the MLP and claim 1's held-out MLP
    assert len([ln for ln in err.splitlines() if ln.startswith("Epoch ")]) == 12
    assert "epoch/s" not in err


def test_log_lines_show_from_the_first_dataset_on(tmp_path, capsys, monkeypatch):
    """The loader's "Loading ..." lines appear for the first dataset, before
    any verbose fit set logging up."""
    from skdigits.datasets import load_mnist, write_idx

    for sub, kind in (("mnist", "digits"), ("fashion-mnist", "fashion")):
        (tmp_path / "data" / sub).mkdir(parents=True)
        for split, name in (("train", "train"), ("test", "t10k")):
            X, y = load_mnist(kind, split, sample=True, return_X_y=True)
            write_idx(tmp_path / "data" / sub / f"{name}-images-idx3-ubyte.gz",
                      X.reshape(-1, 28, 28))
            write_idx(tmp_path / "data" / sub / f"{name}-labels-idx1-ubyte.gz",
                      y.astype(np.uint8))
    assert main(["report", "--data-home", str(tmp_path / "data"), "--dataset",
                 "digits", "--max-iter", "2", "--out", str(tmp_path / "r")]) == 0
    err = capsys.readouterr().err
    loading = [ln for ln in err.splitlines() if ln.startswith("Loading MNIST")]
    assert len(loading) == 2
    assert err.index("Loading MNIST") < err.index("epoch")
    # and the logger is left as it was
    import logging

    assert not [h for h in logging.getLogger("skdigits").handlers
                if isinstance(h, logging.StreamHandler)]
    assert logging.getLogger("skdigits").propagate


def _shown(out):
    page = (out / "index.html").read_text()
    return sorted(re.findall(r'<img src="([^"]+)"', page))


def test_the_folder_holds_what_the_page_shows(tmp_path, capsys):
    out = tmp_path / "r"
    assert _run(out, "-q", dataset="both", max_iter="2") == 0
    assert len(list(out.glob("fashion_*.png"))) == 6
    assert _run(out, "-q", dataset="digits", max_iter="2") == 0
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == _shown(out) and len(pngs) == 6
    assert sorted(p.name for p in out.iterdir()) == sorted(
        json.loads((out / "report.json").read_text())["files"])
    # a killed run (marked the folder with the files it planned and their
    # temporary files, wrote one, then died inside the next) leaves files the
    # page does not show: the next run finds them listed and removes them
    import skdigits._report as rep

    rep.prepare_folder(str(out), planned={"fashion_samples.png",
                                          "fashion_confusion.png"})
    (out / "fashion_samples.png").write_bytes(b"half a run")
    (out / rep.FOLDER.temporary("fashion_confusion.png")).write_bytes(b"half")
    assert _run(out, "-q", dataset="digits", max_iter="2") == 0
    assert sorted(p.name for p in out.glob("*.png")) == _shown(out)
    assert not list(out.glob(".*.part"))


def test_a_folder_with_other_files_is_refused_unless_forced(tmp_path, capsys):
    out = tmp_path / "r"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert _run(out, "-q", max_iter="2") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "notes.txt" in err[0] and "--force" in err[0]
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]  # no training
    assert _run(out, "-q", "--force", max_iter="2") == 0
    assert (out / "notes.txt").read_text() == "mine"
    # a second run into it still needs --force, and never removes the file
    assert _run(out, "-q", max_iter="2") == 1
    assert _run(out, "-q", "--force", dataset="fashion", max_iter="2") == 0
    assert (out / "notes.txt").read_text() == "mine"
    assert not list(out.glob("digits_*"))


@pytest.mark.parametrize("report_json", [
    {"files": ["data.csv"]},  # names a user file: must not delete it
    {"title": "my notes"},  # any JSON: no reason to trust the folder
])
def test_a_foreign_report_json_is_not_trusted(tmp_path, capsys, report_json):
    out = tmp_path / "r"
    out.mkdir()
    (out / "report.json").write_text(json.dumps(report_json))
    (out / "data.csv").write_text("1,2")
    (out / "index.html").write_text("my page")
    assert _run(out, "-q", max_iter="2") == 1
    assert "--force" in capsys.readouterr().err
    assert (out / "index.html").read_text() == "my page"
    assert _run(out, "-q", "--force", max_iter="2") == 0
    assert (out / "data.csv").read_text() == "1,2"  # never removed


def test_only_report_names_are_ever_removed(tmp_path, capsys):
    """A report.json of the report's own format naming other files (or
    paths outside the folder) removes nothing but the report's files."""
    out = tmp_path / "r"
    assert _run(out, "-q", max_iter="2") == 0
    (tmp_path / "outside.txt").write_text("keep")
    report = json.loads((out / "report.json").read_text())
    report["files"] += ["../outside.txt", str(tmp_path / "outside.txt")]
    (out / "report.json").write_text(json.dumps(report))
    assert _run(out, "-q", "--dataset", "fashion", max_iter="2") == 0
    assert (tmp_path / "outside.txt").read_text() == "keep"


def test_files_named_like_temporaries_are_the_users(tmp_path, capsys):
    """A user's .index.html.backup.part in a report folder was taken for an
    interrupted write of index.html and removed, without --force."""
    out = tmp_path / "r"
    assert _run(out, "-q", max_iter="2") == 0
    mine = [".index.html.backup.part", ".report.json.v2.part",
            ".digits_samples.png.0a1b2c3d.part"]
    for name in mine:
        (out / name).write_text("mine")
    assert _run(out, "-q", max_iter="2") == 1  # not the report's: refused
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and ".index.html.backup.part" in err[0]
    assert _run(out, "-q", "--force", max_iter="2") == 0
    for name in mine:
        assert (out / name).read_text() == "mine", name
    assert not set(mine) & set(json.loads(
        (out / ".skdigits-report").read_text())["files"])


def test_a_users_file_named_like_the_reports_is_foreign_unless_listed(tmp_path):
    """In a report folder, a file the marker does not list is the user's,
    whatever its name: a fashion_samples.png beside a digits-only report was
    taken for the report's and replaced by a fashion run without --force."""
    from skdigits._report import FOLDER

    out = tmp_path / "r"
    written = {"index.html", "report.json", "digits_samples.png"}
    previous = FOLDER.prepare(out, planned=written)
    for name in written:
        (out / name).write_text("report's")
    FOLDER.finish(out, previous, written)
    (out / "fashion_samples.png").write_text("mine")
    with pytest.raises(FOLDER.error, match="1 file.*fashion_samples.png"):
        FOLDER.prepare(out, planned={"index.html", "report.json"})
    with pytest.raises(FOLDER.error):  # the same under a marker listing nothing
        FOLDER.prepare(out, planned={"index.html"})
    previous = FOLDER.prepare(out, force=True, planned={"index.html"})
    assert (out / "fashion_samples.png").read_text() == "mine"  # left alone
    # without the user's file, the listed ones are the report's, unforced
    (out / "fashion_samples.png").unlink()
    (out / "index.html").write_text("edited")
    assert FOLDER.prepare(out, planned={"index.html"}) == written


def test_a_folder_whose_marker_lists_no_files_is_judged_by_the_names(tmp_path):
    """The first markers named the generator only; from 08ad0f2 on, every
    file of such a folder counted as the user's and a rerun was refused."""
    from skdigits._report import FOLDER, MARKER

    out = tmp_path / "r"
    out.mkdir()
    (out / MARKER).write_text(json.dumps({"generator": FOLDER.generator}))
    for name in ("index.html", "report.json", "digits_samples.png"):
        (out / name).write_text("old")
    assert FOLDER.prepare(out, planned={"index.html"}) == {
        "index.html", "report.json", "digits_samples.png"}
    (out / "notes.txt").write_text("mine")  # still refused: not a report name
    with pytest.raises(FOLDER.error, match="notes.txt"):
        FOLDER.prepare(out, planned={"index.html"})


def test_a_run_refused_for_a_folder_in_use_leaves_it_alone(tmp_path, monkeypatch):
    """Two runs that both found no folder: the one refused for the lock
    removed the other's marker and folder, as a folder it had made."""
    from skdigits._fileio import FolderInUseError
    from skdigits._report import FOLDER, MARKER

    out = tmp_path / "r"
    with FOLDER.claim(out, planned={"index.html"}):
        with monkeypatch.context() as m:
            m.setattr(os.path, "lexists", lambda path: False)  # it saw no folder
            with pytest.raises(FolderInUseError):
                with FOLDER.claim(out, planned={"index.html"}):
                    pass
        assert (out / MARKER).is_file()


def test_reports_of_the_previous_version_are_recognised(tmp_path, capsys):
    out = tmp_path / "r"
    out.mkdir()
    (out / "digits_samples.png").write_bytes(b"old")
    (out / "fashion_samples.png").write_bytes(b"old")
    (out / "index.html").write_text("old page")
    (out / "report.json").write_text(json.dumps({"seed": 0, "datasets": [
        {"figures": {"samples": "digits_samples.png"}},
        {"figures": {"samples": "fashion_samples.png"}}]}))
    assert _run(out, "-q", max_iter="2") == 0
    assert not (out / "fashion_samples.png").exists()
    assert (out / "digits_samples.png").read_bytes() != b"old"


def test_self_contained_page_embeds_every_png(tmp_path, capsys):
    out = tmp_path / "r"
    assert _run(out, "-q", "--self-contained", max_iter="2") == 0
    page = (out / "index.html").read_text()
    srcs = re.findall(r'<img src="([^"]+)"', page)
    assert len(srcs) == 6
    pngs = {p.read_bytes() for p in out.glob("*.png")}
    assert {base64.b64decode(s.split(",", 1)[1]) for s in srcs} == pngs
    assert all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "<script" not in page and "http" not in page


def test_numbers_come_from_the_kept_model(tmp_path, capsys):
    from skdigits import MLPClassifier
    from skdigits.datasets import load_mnist

    out = tmp_path / "r"
    assert _run(out, "-q", "--seed", "2", max_iter="8") == 0
    report = json.loads((out / "report.json").read_text())
    mlp = report["datasets"][0]["models"]["mlp"]
    X, y = load_mnist("digits", "train", sample=True, return_X_y=True)
    X = X.astype(np.float32) / 255.0
    model = MLPClassifier(early_stopping=True, random_state=2, max_iter=8).fit(X, y)
    kept = int(np.argmax(model.validation_scores_)) + 1
    assert mlp["kept_epoch"] == kept == report["datasets"][0]["facts"]["kept_epoch"]
    assert mlp["train_accuracy"] == model.score(X, y)
    if kept != len(model.accuracy_curve_):  # the last epoch would differ
        assert mlp["train_accuracy"] != model.accuracy_curve_[-1]
    page = (out / "index.html").read_text()
    assert "train accuracy (kept model)" in page and "kept epoch" in page
    assert f"<td>{kept}</td>" in page
    # the page says what early stopping watched (scoring=None: the accuracy)
    assert mlp["stopped_on"] == "validation accuracy"
    assert report["datasets"][0]["models"]["ovr"]["stopped_on"] is None
    assert "<th>early stopping on</th>" in page
    assert "<td>validation accuracy</td>" in page and "<td>off</td>" in page
    # and whether the MLP trained with dropout (the default: off)
    assert mlp["dropout"] == 0.0
    assert report["datasets"][0]["models"]["ovr"]["dropout"] is None
    assert "<th>dropout</th>" in page and "<td>none (no hidden layer)</td>" in page
    assert any(o.startswith("MLP early stopping watched the validation accuracy")
               for o in report["datasets"][0]["observations"])
    # compile and cache load are timed apart, once per model
    timings = report["timings"]
    assert set(timings["compile_seconds"]) == {"ovr", "mlp"}
    assert "left out of the fit times" in page


def test_plots_mark_the_kept_epoch(tmp_path, monkeypatch, pyplot):
    import skdigits._report as rep

    seen = {}

    def keep(fig, path):
        seen[path.rsplit("_", 1)[0].split("digits_")[-1] + "_" +
             path.rsplit("_", 1)[1]] = fig
        return path

    monkeypatch.setattr(rep, "_save", keep)
    fits = []
    real_fit = rep.fit_model
    monkeypatch.setattr(rep, "fit_model", lambda model, X, y, **kw: (
        fits.append((type(model).__name__, X.copy())), real_fit(model, X, y, **kw))[1])
    result = rep.study("digits", str(tmp_path), sample=True, seed=0, max_iter=6)
    kept = result["models"]["mlp"]["kept_epoch"]
    # claim 1 is judged by an MLP that never saw the grid's images
    from skdigits.datasets import load_mnist
    from skdigits.plotting import DigitGridDisplay

    X, y = load_mnist("digits", "train", sample=True, return_X_y=True)
    grid = DigitGridDisplay.from_dataset(X, y, n_samples=100, random_state=0)
    (name, X_proxy), = [f for f in fits if len(f[1]) == len(X) - 100]
    assert name == "MLPClassifier" and len(fits) == 3
    trained_on = {row.tobytes() for row in X_proxy}
    grid_rows = (X[grid.indices] / 255.0).astype(np.float32)
    assert not any(row.tobytes() in trained_on for row in grid_rows)
    assert len(result["facts"]["grid_label_proba"]) == 100

    def kept_lines(ax):
        return [ln for ln in ax.get_lines() if list(ln.get_xdata()) == [kept, kept]]

    curves = seen["mlp_curves.png"]
    assert len(curves.axes) == 4
    assert all(len(kept_lines(ax)) == 1 for ax in curves.axes)
    per_class = seen["mlp_loss_per_class.png"].axes[0]
    assert len(kept_lines(per_class)) == 1
    # validation curves only for the three highlighted classes
    dashed = [ln for ln in per_class.get_lines() if ln.get_linestyle() == "--"]
    assert len(dashed) == 3
    # no legend inside the training-curve panels: one below them
    assert all(ax.get_legend() is None for ax in curves.axes)
    assert len(curves.legends) == 1


def test_one_ranking_per_model_for_its_plot_and_its_text(tmp_path, monkeypatch,
                                                         pyplot):
    """The hardest classes are ranked once per model, at the epoch it keeps;
    the per-class plot's bold classes and the observations use that list."""
    import skdigits._report as rep

    seen, models = {}, []
    monkeypatch.setattr(rep, "_save", lambda fig, path: seen.setdefault(
        os.path.basename(path), fig) and os.path.basename(path))
    real_fit = rep.fit_model
    monkeypatch.setattr(rep, "fit_model", lambda model, X, y, **kw: (
        models.append(model), real_fit(model, X, y, **kw))[1])
    result = rep.study("digits", str(tmp_path), sample=True, seed=0)

    def bold(name):
        return sorted(ln.get_label() for ln in seen[name].axes[0].get_lines()
                      if ln.get_linewidth() > 2 and ln.get_linestyle() == "-")

    # the plot's bold classes are the text's
    assert bold("digits_mlp_loss_per_class.png") == sorted(result["mlp_hardest"])
    mlp = result["models"]["mlp"]
    kept = mlp["kept_epoch"]
    assert kept < mlp["epochs"]  # early stopping kept an earlier epoch
    at_kept = np.asarray(models[1].loss_curve_per_class_)[kept - 1]
    hardest = [str(j) for j in np.argsort(-at_kept, kind="stable")[:3]]
    # the ranking at the last epoch differs here: the case of the issue
    last = np.asarray(models[1].loss_curve_per_class_)[-1]
    assert sorted(hardest) != sorted(str(j) for j in np.argsort(-last)[:3])
    assert mlp["hardest"][:3] == result["mlp_hardest"] == hardest
    assert bold("digits_mlp_loss_per_class.png") == sorted(hardest)
    title = seen["digits_mlp_loss_per_class.png"].axes[0].get_title()
    assert f"bold: {', '.join(hardest)}, the highest at the kept epoch {kept}" in title
    text, = [o for o in result["observations"] if o.startswith("MLP at epoch")]
    assert text.startswith(f"MLP at epoch {kept}, whose weights it keeps") \
        and rep._join(hardest) in text
    # the one-vs-rest model keeps its last epoch: its plot, its text and
    # claim 2b name the same classes
    ovr = result["models"]["ovr"]
    assert ovr["kept_epoch"] == ovr["epochs"]
    assert bold("digits_ovr_loss_per_class.png") == sorted(ovr["hardest"][:3]) \
        == sorted(result["ovr_hardest"])
    assert f"are {rep._join(result['ovr_hardest'])}, bold" in result["observations"][0]
    claim_2b = {c["id"]: c for c in _claims.judge({"digits": result["facts"]})}["2b"]
    assert claim_2b["evidence"].endswith("highest: " + ", ".join(result["ovr_hardest"]))


def test_run_context_in_json_and_page(tmp_path, capsys):
    import skdigits

    out = tmp_path / "r"
    assert _run(out, "-q", "--seed", "5", max_iter="2") == 0
    report = json.loads((out / "report.json").read_text())
    run = report["run"]
    assert run["skdigits"] == skdigits.__version__ and run["seed"] == 5
    assert run["max_iter"] == 2 and run["machine"]["blas"]
    assert re.match(r"\d{4}-\d\d-\d\dT", run["date"])
    params = report["datasets"][0]["models"]["mlp"]["params"]
    assert params["random_state"] == 5 and params["early_stopping"] is True
    assert "callbacks" not in params
    page = (out / "index.html").read_text()
    assert skdigits.__version__ in page and run["date"] in page
    assert "random_state=5" in page and "kernel" in page
    assert "sample bundled with skdigits" in page


def test_the_page_describes_the_mlp_that_ran(tmp_path, capsys):
    """The page's description of the MLP is read from the model that ran
    (it once said 784-256-10 with label smoothing 0.1 beside a 512-unit
    model with 0.2), and the report's MLP waits PATIENCE epochs."""
    from skdigits import MLPClassifier
    from skdigits._report import PATIENCE, _mlp_recipe

    out = tmp_path / "r"
    assert _run(out, "-q", max_iter="2") == 0
    report = json.loads((out / "report.json").read_text())
    params = report["datasets"][0]["models"]["mlp"]["params"]
    assert params["n_iter_no_change"] == PATIENCE > 10
    hidden = "-".join(map(str, params["hidden_layer_sizes"]))
    text = _mlp_recipe(params)
    assert text.startswith(f"784-{hidden}-10 ReLU")
    assert f"label smoothing {params['label_smoothing']:g}" in text
    assert f"alpha={params['alpha']:g}" in text and "2 epochs (--max-iter)" in text
    page = " ".join((out / "index.html").read_text().split())
    assert text in page and f"after {PATIENCE} epochs without" in page
    # another network, another description
    other = _mlp_recipe({**params, "hidden_layer_sizes": [64, 32],
                         "label_smoothing": 0.0, "max_iter": "auto",
                         "standardize": False})
    assert other.startswith("784-64-32-10 ReLU, raw inputs, label smoothing 0,")
    assert f"about {MLPClassifier._auto_updates} updates" in other


def test_dropout_cell_says_whether_dropout_was_on():
    from skdigits._report import dropout_cell

    assert dropout_cell(0.25) == "p = 0.25"
    assert dropout_cell(0.0) == "off"
    assert dropout_cell(None) == "none (no hidden layer)"
