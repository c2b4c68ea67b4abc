"""The study's claims, judged from the figures of one report run.

Each claim of the study that ``skdigits report`` reproduces is turned into a
measurement with a stated threshold, and judged from the *facts* a run
collected (plain lists and numbers, see :func:`facts_from_run` in
``_report``). Nothing here trains or draws: the functions are pure, so a test
can feed made-up curves and watch a verdict flip.

A verdict is ``"confirmed"``, ``"partly confirmed"``, ``"not confirmed"``, or
``"not measured"`` when the run holds no figures for it (a dataset left out,
too few epochs to see a shape).
"""

import math

import numpy as np

from .metrics import per_class_loss_rankings

CONFIRMED = "confirmed"
PARTLY = "partly confirmed"
NOT_CONFIRMED = "not confirmed"
NOT_MEASURED = "not measured"
VERDICTS = (CONFIRMED, PARTLY, NOT_CONFIRMED, NOT_MEASURED)

# ----------------------------------------------------------- thresholds
#: "Falls fast at first": at least this share of the curve's fall, from the
#: first epoch to the last, happens within the first quarter of the epochs
#: (at least epochs 1 to 2), twice the share a steady fall would give.
FAST_SHARE = 0.50
FAST_PART = 0.25
#: "Then almost constant": the second half of the epochs accounts for at most
#: this share of that fall.
FLAT_SHARE = 0.20
#: "Does not fall with more epochs": over the second half of the epochs the
#: loss falls by less than this fraction of its value.
STILL_RELATIVE = 0.10
#: Fewest epochs for a verdict on a curve's shape.
MIN_EPOCHS = 4
#: Claim 1's proxy: a grid image is hard to make out when the trained MLP
#: gets it wrong or gives its label a probability below this.
UNSURE_PROBA = 0.5
#: How many of the hardest (highest final loss) classes count as "high".
TOP_HARD = 3
#: How many of the earliest-converging classes count as "early".
TOP_EARLY = 3
#: How many of the most confused (unordered) pairs count as "the confusions".
TOP_PAIRS = 5
#: "Most are right": at least this many of the 100 grid predictions.
MOST_RIGHT = 90
#: "Accuracy increases with the epochs": Spearman's rank correlation of the
#: validation accuracy with the epoch at least this.
RISING_RANK = 0.8
#: "Still improving" in the zoom: the validation accuracy's least-squares
#: slope over the zoomed epochs at least this many percentage points per epoch.
IMPROVING_PP = 0.05

THRESHOLDS = (
    "Shapes are measured on the curves as plotted, from the first epoch to "
    f"the last (at least {MIN_EPOCHS} epochs, else 'not measured').",
    f"Falls fast at first: at least {FAST_SHARE:.0%} of the fall from the "
    "first epoch's loss to the last epoch's happens in the first "
    f"{FAST_PART:.0%} of the epochs (at least epochs 1 to 2): twice the "
    "share of a steady fall.",
    f"Then almost constant: the second half of the epochs accounts for at "
    f"most {FLAT_SHARE:.0%} of that fall.",
    f"Stays high: among the {TOP_HARD} classes with the highest final "
    "training loss of the one-vs-rest models. Does not fall with more "
    f"epochs: over the second half of the epochs its loss falls by less than "
    f"{STILL_RELATIVE:.0%} of its value.",
    "Converges: the first epoch at which a class's loss is below the mean of "
    f"the classes' final losses; converges early: among the first {TOP_EARLY} "
    "classes to do so (classes converging at the same epoch are ordered by "
    "their final loss, the lowest first).",
    "Hard to make out (claim 1's proxy): an MLP trained with the same "
    "settings on the training images without the grid's 100 gets the grid "
    f"image wrong or gives its label a probability below {UNSURE_PROBA}; "
    "'some' means at least two of the 100.",
    f"Most predictions right: at least {MOST_RIGHT} of the 100 (partly: more "
    "than half).",
    f"The confusions: among the {TOP_PAIRS} most confused pairs of the test "
    "set, counting both directions.",
    "Less accurate, harder to learn: lower test accuracy and more grid "
    "mistakes; lower accuracy and higher cross-entropy of the kept model on "
    "the training file (its validation tenth included).",
    "Accuracy increases: training and validation accuracy higher at the last "
    "epoch than at the first, and the validation accuracy's rank correlation "
    f"with the epoch at least {RISING_RANK}.",
    "Still improving in the zoom (the second half of the epochs): the "
    "validation accuracy rises by at least "
    f"{IMPROVING_PP} percentage points per epoch (least-squares slope). The "
    "schedule anneals the learning rate to zero, so 'more training' means a "
    "longer schedule.",
)

#: The study's wording of claim 3b names label 4 "Sneaker"; it is "Coat".
NAME_NOTE = ("The study calls labels 6, 2 and 4 'Shirt, Pullover and "
             "Sneaker', but label 4 is Coat; Sneaker is label 7. The claim is "
             "judged on the labels 6, 2 and 4, and Sneaker's rank is given.")

CLAIMS = {
    "1": "Some digits in a grid of 100 random samples are very hard to make out.",
    "2a": "MNIST, loss of each label's one-vs-rest model: it falls fast at "
          "first and is then almost constant.",
    "2b": "For some digits, for example 8 and 9, the loss stays high and does "
          "not fall with more epochs.",
    "2c": "Some digits, such as 0 and 1, converge much earlier.",
    "3a": "Fashion-MNIST, the same plot: the same fast-then-flat shape.",
    "3b": "Labels 6, 2 and 4 stay high (the study calls them Shirt, Pullover "
          "and Sneaker).",
    "4a": "MNIST predictions on 100 random test samples: most are right.",
    "4b": "The model sometimes confuses 8 with 4 and 0 with 6, because they "
          "look alike.",
    "5": "Fashion-MNIST predictions are less accurate than the digits ones.",
    "6": "Fashion-MNIST is visibly harder to learn.",
    "7": "The loss against epoch falls fast at first, then is almost constant.",
    "8": "Fashion-MNIST accuracy increases with the epochs.",
    "9": "In a zoomed view of the late epochs, the curves are still improving, "
         "so more training would still help.",
}


# ----------------------------------------------------------- measurements


def fall_shape(curve):
    """How a loss curve falls from its first epoch to its last: the share of
    the fall done by the end of the first quarter of the epochs (at least
    epoch 2), and the share left to the second half. Returns
    ``(head, tail)``; NaN when the curve does not fall or has fewer than two
    epochs."""
    curve = np.asarray(curve, dtype=float)
    n = len(curve)
    if n < 2:
        return math.nan, math.nan
    fall = curve[0] - curve[-1]
    if not np.isfinite(fall) or fall <= 0:
        return math.nan, math.nan
    head_end = max(2, math.ceil(FAST_PART * n))  # epochs 1..head_end
    half = math.ceil(n / 2)  # the second half runs from epoch half to n
    head = (curve[0] - curve[head_end - 1]) / fall
    tail = (curve[half - 1] - curve[-1]) / fall
    return float(head), float(tail)


def late_fall(curve):
    """The fraction of its value a curve loses over the second half of its
    epochs (NaN for fewer than two epochs)."""
    curve = np.asarray(curve, dtype=float)
    if len(curve) < 2:
        return math.nan
    mid = curve[math.ceil(len(curve) / 2) - 1]
    return float((mid - curve[-1]) / mid) if mid > 0 else math.nan


def is_fast_then_flat(head, tail):
    return bool(head >= FAST_SHARE and tail <= FLAT_SHARE)


def convergence_epochs(curves):
    """The first epoch (1-based) at which each class's loss is at or below
    the mean of the classes' final losses (None for a class that never is),
    the threshold, and the classes in order of convergence (ties: the lower
    final loss first), as :func:`skdigits.metrics.per_class_loss_rankings`."""
    ranks = per_class_loss_rankings(curves)
    epochs = [int(e) if np.isfinite(e) else None for e in ranks.convergence_epoch]
    order = [int(name) for name in ranks.converged_first]
    return epochs, float(ranks.convergence_threshold), order


def hardest_order(final):
    """Class indices by final loss, highest first (ties by index)."""
    ranks = per_class_loss_rankings(np.asarray(final, dtype=float)[None, :])
    return [int(name) for name in ranks.hardest]


def pair_ranks(confusion):
    """Unordered pairs ``(a, b)`` with ``a < b`` by confusion count, most
    first (ties by ``a``, then ``b``), with the count of both directions."""
    cm = np.asarray(confusion)
    k = cm.shape[0]
    pairs = [(int(cm[a, b] + cm[b, a]), a, b) for a in range(k)
             for b in range(a + 1, k)]
    pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
    return [(a, b, n) for n, a, b in pairs]


def spearman(values):
    """Spearman's rank correlation of ``values`` with their position (NaN for
    fewer than two values or a constant series)."""
    v = np.asarray(values, dtype=float)
    if len(v) < 2 or np.all(v == v[0]):
        return math.nan
    from scipy.stats import spearmanr

    return float(spearmanr(np.arange(len(v)), v).statistic)


def slope(values):
    """Least-squares slope of ``values`` per step."""
    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return math.nan
    return float(np.polyfit(np.arange(len(v), dtype=float), v, 1)[0])


# ----------------------------------------------------------- judging


def _claim(key, verdict, evidence, sample_note=None):
    assert verdict in VERDICTS, verdict
    out = {"id": key, "claim": CLAIMS[key], "verdict": verdict,
           "evidence": evidence}
    if sample_note:
        out["note"] = sample_note
    return out


def _by_count(hits, total):
    if hits == total:
        return CONFIRMED
    return PARTLY if hits else NOT_CONFIRMED


def _too_few(n):
    return (f"only {n} epoch{'s' if n != 1 else ''}: too few to see a shape "
            f"(at least {MIN_EPOCHS} needed)")


def _missing(title):
    return f"this run did not include {title}"


def _pct(x):
    return f"{100 * x:.1f}%" if np.isfinite(x) else "n/a"


def _shape_evidence(name, head, tail):
    return (f"{name}: {_pct(head)} of the fall by the end of the first quarter, "
            f"{_pct(tail)} in the second half")


def _ovr_shape(facts, key):
    curves = np.asarray(facts["ovr_loss_per_class"], dtype=float)
    if curves.shape[0] < MIN_EPOCHS:
        return _claim(key, NOT_MEASURED, _too_few(curves.shape[0]))
    names = facts["names"]
    shapes = [fall_shape(curves[:, j]) for j in range(curves.shape[1])]
    ok = [is_fast_then_flat(h, t) for h, t in shapes]
    heads = [h for h, _ in shapes if np.isfinite(h)] or [math.nan]
    tails = [t for _, t in shapes if np.isfinite(t)] or [math.nan]
    failing = [names[j] for j, good in enumerate(ok) if not good]
    evidence = (f"{sum(ok)} of {len(ok)} labels fall fast then flat over "
                f"{curves.shape[0]} epochs; share of the fall in the first "
                f"quarter {_pct(min(heads))} to {_pct(max(heads))}, in the second "
                f"half {_pct(min(tails))} to {_pct(max(tails))}")
    if failing:
        evidence += "; not for " + ", ".join(failing)
    verdict = CONFIRMED if all(ok) else PARTLY if sum(ok) * 2 >= len(ok) \
        else NOT_CONFIRMED
    return _claim(key, verdict, evidence)


def _stay_high(facts, key, labels):
    """How many of ``labels`` stay high (and, for 2b, do not fall over the
    second half), with the evidence and every class's rank."""
    curves = np.asarray(facts["ovr_loss_per_class"], dtype=float)
    names = facts["names"]
    order = hardest_order(curves[-1])
    rank = {j: order.index(j) + 1 for j in order}
    parts, hits = [], 0
    for j in labels:
        drop = late_fall(curves[:, j])
        high = rank[j] <= TOP_HARD
        still = bool(drop < STILL_RELATIVE)
        hits += int(high and (still or key == "3b"))
        parts.append(f"{names[j]} ranks {rank[j]} of {len(order)} by final loss "
                     f"({curves[-1, j]:.4f})"
                     + (f", falls by {_pct(drop)} over the second half"
                        if key == "2b" else ""))
    evidence = "; ".join(parts) + "; highest: " + ", ".join(
        names[j] for j in order[:TOP_HARD])
    return hits, evidence, rank


def verdict_counts(claims):
    """How many ``claims`` got each verdict, as ``[(verdict, count)]`` in the
    order of :data:`VERDICTS` on every run; the judged verdicts always, "not
    measured" only when some are."""
    counts = [(v, sum(c["verdict"] == v for c in claims)) for v in VERDICTS]
    return [(v, n) for v, n in counts if n or v != NOT_MEASURED]


def format_counts(claims):
    """The verdict counts in words: ``"9 confirmed, 2 partly confirmed, 2 not
    confirmed"``."""
    return ", ".join(f"{n} {v}" for v, n in verdict_counts(claims))


def judge(facts_by_dataset, *, sample=False):
    """The study's claims judged from the facts of each dataset run (keys
    ``"digits"`` and ``"fashion"``; either may be missing). Returns a list of
    ``{"id", "claim", "verdict", "evidence"[, "note"]}`` dicts, in the study's
    order."""
    digits = facts_by_dataset.get("digits")
    fashion = facts_by_dataset.get("fashion")
    claims = []

    # 1. hard-to-make-out grid images, through the trained MLP
    if digits is None:
        claims.append(_claim("1", NOT_MEASURED, _missing("MNIST")))
    else:
        proba = np.asarray(digits["grid_label_proba"], dtype=float)
        right = np.asarray(digits["grid_right"], dtype=bool)
        hard = np.flatnonzero(~right | (proba < UNSURE_PROBA))
        evidence = (f"{len(hard)} of the grid's {len(proba)} images are wrong or "
                    f"unsure (label probability below {UNSURE_PROBA}) for an MLP "
                    "that did not train on them")
        if len(hard):
            evidence += ": " + ", ".join(
                f"#{i + 1} (label {digits['grid_labels'][i]}, "
                f"{'wrong' if not right[i] else 'right'}, p={proba[i]:.2f})"
                for i in hard[:8])
        elif len(proba):
            i = int(np.argmin(proba))
            evidence += (f"; the least sure is #{i + 1} (label "
                         f"{digits['grid_labels'][i]}, p={proba[i]:.2f})")
        verdict = CONFIRMED if len(hard) >= 2 else PARTLY if len(hard) == 1 \
            else NOT_CONFIRMED
        claims.append(_claim("1", verdict, evidence))

    # 2. MNIST one-vs-rest curves
    if digits is None:
        for key in ("2a", "2b", "2c"):
            claims.append(_claim(key, NOT_MEASURED, _missing("MNIST")))
    else:
        claims.append(_ovr_shape(digits, "2a"))
        names = digits["names"]
        n_epochs = len(digits["ovr_loss_per_class"])
        if n_epochs < MIN_EPOCHS:
            claims.append(_claim("2b", NOT_MEASURED, _too_few(n_epochs)))
        else:
            hits, evidence, _ = _stay_high(digits, "2b", [8, 9])
            claims.append(_claim("2b", _by_count(hits, 2), evidence))
        if n_epochs < MIN_EPOCHS:  # which label converges first: all at once
            claims.append(_claim("2c", NOT_MEASURED, _too_few(n_epochs)))
        else:
            epochs, threshold, order = convergence_epochs(
                digits["ovr_loss_per_class"])
            early = order[:TOP_EARLY]
            hits = sum(j in early for j in (0, 1))
            never = [names[j] for j in range(len(epochs)) if epochs[j] is None]
            evidence = (f"epoch each label's loss first falls below the mean "
                        f"final loss {threshold:.4f}: " + ", ".join(
                            f"{names[j]}: {epochs[j] if epochs[j] else 'never'}"
                            for j in order)
                        + f"; first {TOP_EARLY}: "
                        + ", ".join(names[j] for j in early))
            if never:
                evidence += f"; {len(never)} labels never do"
            claims.append(_claim("2c", _by_count(hits, 2), evidence))

    # 3. Fashion-MNIST one-vs-rest curves
    if fashion is None:
        for key in ("3a", "3b"):
            claims.append(_claim(key, NOT_MEASURED, _missing("Fashion-MNIST")))
    else:
        claims.append(_ovr_shape(fashion, "3a"))
        n_epochs = len(fashion["ovr_loss_per_class"])
        if n_epochs < MIN_EPOCHS:  # as 2b
            claims.append(_claim("3b", NOT_MEASURED, _too_few(n_epochs)))
        else:
            hits, evidence, rank = _stay_high(fashion, "3b", [6, 2, 4])
            evidence += (f"; Sneaker (label 7), named in the study, ranks "
                         f"{rank[7]}")
            claims.append(_claim("3b", _by_count(hits, 3), evidence))

    # 4. MNIST predictions
    if digits is None:
        for key in ("4a", "4b"):
            claims.append(_claim(key, NOT_MEASURED, _missing("MNIST")))
    else:
        n_right = int(np.sum(digits["predictions_right"]))
        n = len(digits["predictions_right"])
        verdict = CONFIRMED if n_right >= MOST_RIGHT else PARTLY \
            if n_right * 2 > n else NOT_CONFIRMED
        claims.append(_claim("4a", verdict,
                             f"{n_right} of {n} right; test accuracy "
                             f"{digits['test_accuracy']:.4f}"))
        ranked = pair_ranks(digits["confusion"])
        where = {(a, b): (i + 1, c) for i, (a, b, c) in enumerate(ranked)}
        hits, parts = 0, []
        for a, b in ((4, 8), (0, 6)):
            r, c = where[(a, b)]
            hits += r <= TOP_PAIRS and c > 0
            parts.append(f"{b}<->{a}: {c} test mistakes, rank {r} of {len(ranked)}")
        top = ", ".join(f"{a}<->{b} ({c})" for a, b, c in ranked[:TOP_PAIRS] if c)
        claims.append(_claim("4b", _by_count(hits, 2),
                             "; ".join(parts) + f"; top pairs: {top or 'none'}"))

    # 5, 6: Fashion-MNIST against the digits
    if digits is None or fashion is None:
        why = _missing("MNIST" if digits is None else "Fashion-MNIST")
        claims.append(_claim("5", NOT_MEASURED, why + " (the claim compares both)"))
        claims.append(_claim("6", NOT_MEASURED, why + " (the claim compares both)"))
    else:
        lower = fashion["test_accuracy"] < digits["test_accuracy"]
        f_wrong = len(fashion["predictions_right"]) - int(
            np.sum(fashion["predictions_right"]))
        d_wrong = len(digits["predictions_right"]) - int(
            np.sum(digits["predictions_right"]))
        more = f_wrong > d_wrong
        claims.append(_claim("5", _by_count(int(lower) + int(more), 2),
                             f"MLP test accuracy: Fashion-MNIST "
                             f"{fashion['test_accuracy']:.4f}, MNIST "
                             f"{digits['test_accuracy']:.4f}; grid mistakes: "
                             f"{f_wrong} against {d_wrong}"))
        acc_lower = fashion["kept_train_accuracy"] < digits["kept_train_accuracy"]
        loss_higher = fashion["kept_train_loss"] > digits["kept_train_loss"]
        claims.append(_claim("6", _by_count(int(acc_lower) + int(loss_higher), 2),
                             f"kept MLP on the training file: accuracy "
                             f"{fashion['kept_train_accuracy']:.4f} against "
                             f"{digits['kept_train_accuracy']:.4f}, cross-entropy "
                             f"{fashion['kept_train_loss']:.4f} against "
                             f"{digits['kept_train_loss']:.4f} (Fashion-MNIST "
                             "against MNIST)"))

    # 7. the MLP's loss curve, each dataset run
    runs = [(TITLE[k], f) for k, f in (("digits", digits), ("fashion", fashion))
            if f is not None]
    parts, hits, measured = [], 0, 0
    for title, f in runs:
        curve = f["mlp_loss"]
        if len(curve) < MIN_EPOCHS:
            parts.append(f"{title}: only {len(curve)} epochs")
            continue
        measured += 1
        head, tail = fall_shape(curve)
        hits += is_fast_then_flat(head, tail)
        parts.append(_shape_evidence(f"{title} MLP training loss", head, tail))
    claims.append(_claim("7", _by_count(hits, measured) if measured else
                         NOT_MEASURED, "; ".join(parts) or "no dataset run"))

    # 8. Fashion-MNIST accuracy against the epoch
    if fashion is None:
        claims.append(_claim("8", NOT_MEASURED, _missing("Fashion-MNIST")))
    else:
        train, val = fashion["mlp_train_accuracy"], fashion["mlp_val_accuracy"]
        if len(train) < 2:
            claims.append(_claim("8", NOT_MEASURED, "fewer than 2 epochs"))
        else:
            train_up = train[-1] > train[0]
            rho = spearman(val)
            val_up = val[-1] > val[0] and rho >= RISING_RANK
            verdict = CONFIRMED if train_up and val_up else PARTLY \
                if train_up or val_up else NOT_CONFIRMED
            claims.append(_claim(
                "8", verdict,
                f"training accuracy {train[0]:.4f} at epoch 1, {train[-1]:.4f} at "
                f"epoch {len(train)}; validation {val[0]:.4f} to {val[-1]:.4f}, "
                "rank correlation with the epoch "
                + (f"{rho:.2f}" if np.isfinite(rho) else "n/a (constant)")))

    # 9. the zoom: still improving?
    parts, hits, measured = [], 0, 0
    for title, f in runs:
        val = f["mlp_val_accuracy"]
        if len(val) < MIN_EPOCHS:
            parts.append(f"{title}: only {len(val)} epochs")
            continue
        measured += 1
        zoom = val[len(val) // 2 - 1:]  # epochs n/2 .. n, as the zoomed plot
        pp = 100 * slope(zoom)
        loss_pp = slope(f["mlp_loss"][len(val) // 2 - 1:])
        hits += pp >= IMPROVING_PP
        parts.append(f"{title}: validation accuracy {pp:+.3f} points per epoch "
                     f"over epochs {len(val) // 2} to {len(val)}, best at epoch "
                     f"{f['kept_epoch']}; training loss {loss_pp:+.4f} per epoch")
    claims.append(_claim("9", _by_count(hits, measured) if measured else
                         NOT_MEASURED, "; ".join(parts) or "no dataset run"))

    if sample:
        note = ("judged on the bundled sample (a few thousand images), not "
                "the full data: a small sample can flip a verdict")
        for c in claims:
            if c["verdict"] != NOT_MEASURED:
                c["note"] = note
    return claims


TITLE = {"digits": "MNIST", "fashion": "Fashion-MNIST"}
