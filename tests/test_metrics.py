"""skdigits.metrics.most_confused_pairs: examples, errors and properties
checked against a brute-force count."""

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.utils._param_validation import InvalidParameterError

from skdigits.metrics import most_confused_pairs


def _reference(y_true, y_pred, labels, k, symmetric):
    """Count the mistakes one by one; sort by count, then label positions."""
    pos = {label: i for i, label in enumerate(labels)}
    counts = Counter()
    for t, p in zip(y_true, y_pred):
        if t == p or t not in pos or p not in pos:
            continue
        if symmetric and pos[p] < pos[t]:
            t, p = p, t
        counts[(t, p)] += 1
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], pos[kv[0][0]],
                                                    pos[kv[0][1]]))
    ranked = [(t, p, n) for (t, p), n in ranked]
    return ranked if k is None else ranked[:k]


def test_example():
    y_true = [3, 3, 3, 5, 5, 8, 8, 8, 9]
    y_pred = [5, 5, 3, 3, 5, 3, 9, 8, 8]
    assert most_confused_pairs(y_true, y_pred, k=3) == [
        (3, 5, 2), (5, 3, 1), (8, 3, 1)]
    assert most_confused_pairs(y_true, y_pred, k=None) == [
        (3, 5, 2), (5, 3, 1), (8, 3, 1), (8, 9, 1), (9, 8, 1)]
    assert most_confused_pairs(y_true, y_pred, symmetric=True) == [
        (3, 5, 3), (8, 9, 2), (3, 8, 1)]


def test_returns_python_scalars():
    pairs = most_confused_pairs(np.array([0, 1, 1]), np.array([1, 0, 0]))
    assert pairs == [(1, 0, 2), (0, 1, 1)]
    true, pred, count = pairs[0]
    assert type(true) is int and type(pred) is int and type(count) is int


def test_string_labels():
    names = np.array(["Shirt", "Coat", "Pullover", "Shirt", "Shirt"])
    pred = np.array(["Coat", "Coat", "Coat", "Pullover", "Coat"])
    pairs = most_confused_pairs(names, pred)
    assert pairs == [("Shirt", "Coat", 2), ("Pullover", "Coat", 1),
                     ("Shirt", "Pullover", 1)]
    assert all(type(t) is str for t, _, _ in pairs)


def test_no_mistakes_gives_empty_list():
    assert most_confused_pairs([0, 1, 2], [0, 1, 2]) == []


def test_labels_order_breaks_ties_and_filters():
    y_true = [0, 1, 2]
    y_pred = [1, 2, 0]
    assert most_confused_pairs(y_true, y_pred) == [(0, 1, 1), (1, 2, 1), (2, 0, 1)]
    assert most_confused_pairs(y_true, y_pred, labels=[2, 1, 0]) == [
        (2, 0, 1), (1, 2, 1), (0, 1, 1)]
    # samples whose labels are not listed are ignored
    assert most_confused_pairs(y_true, y_pred, labels=[0, 1]) == [(0, 1, 1)]


@pytest.mark.parametrize("k", [0, -1, 1.5, "3"])
def test_bad_k(k):
    with pytest.raises(InvalidParameterError):
        most_confused_pairs([0, 1], [1, 0], k=k)


def test_length_mismatch():
    with pytest.raises(ValueError):
        most_confused_pairs([0, 1, 1], [1, 0])


labels_st = st.lists(st.integers(0, 5), min_size=1, max_size=60)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), k=st.one_of(st.none(), st.integers(1, 8)),
       symmetric=st.booleans())
def test_matches_brute_force(data, k, symmetric):
    y_true = data.draw(labels_st)
    y_pred = data.draw(st.lists(st.integers(0, 5), min_size=len(y_true),
                                max_size=len(y_true)))
    labels = sorted(set(y_true) | set(y_pred))
    pairs = most_confused_pairs(y_true, y_pred, k=k, symmetric=symmetric)
    assert pairs == _reference(y_true, y_pred, labels, k, symmetric)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), symmetric=st.booleans())
def test_properties(data, symmetric):
    y_true = data.draw(labels_st)
    y_pred = data.draw(st.lists(st.integers(0, 5), min_size=len(y_true),
                                max_size=len(y_true)))
    labels = data.draw(st.permutations(sorted(set(y_true) | set(y_pred))))
    pairs = most_confused_pairs(y_true, y_pred, labels=labels, k=None,
                                symmetric=symmetric)
    counts = [n for _, _, n in pairs]
    # every mistake is counted once, the diagonal never appears
    assert sum(counts) == sum(t != p for t, p in zip(y_true, y_pred))
    assert all(t != p and n > 0 for t, p, n in pairs)
    assert counts == sorted(counts, reverse=True)
    assert len(set((t, p) for t, p, _ in pairs)) == len(pairs)
    if symmetric:
        pos = {label: i for i, label in enumerate(labels)}
        assert all(pos[t] < pos[p] for t, p, _ in pairs)
    # k only truncates
    assert most_confused_pairs(y_true, y_pred, labels=labels, k=2,
                               symmetric=symmetric) == pairs[:2]


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 8), st.integers(1, 6), st.integers(0, 2**32 - 1))
def test_per_class_loss_rankings_follow_their_definition(n_epochs, n_classes, seed):
    from skdigits.metrics import per_class_loss_rankings

    rng = np.random.default_rng(seed)
    curves = rng.choice([0.1, 0.2, 0.3, 0.5], size=(n_epochs, n_classes))
    ranks = per_class_loss_rankings(curves)
    final = curves[-1]
    assert ranks.convergence_threshold == pytest.approx(final.mean())
    hard = [int(n) for n in ranks.hardest]
    assert sorted(hard) == list(range(n_classes))
    assert all(final[a] >= final[b] for a, b in zip(hard, hard[1:]))
    for j in range(n_classes):
        hits = np.flatnonzero(curves[:, j] <= ranks.convergence_threshold)
        expected = hits[0] + 1 if hits.size else np.inf
        assert ranks.convergence_epoch[j] == expected
    order = [int(n) for n in ranks.converged_first]
    keys = [(ranks.convergence_epoch[j], final[j]) for j in order]
    assert keys == sorted(keys)


def test_per_class_loss_rankings_refuse_bad_shapes():
    from skdigits.metrics import per_class_loss_rankings

    with pytest.raises(ValueError, match="2-D"):
        per_class_loss_rankings([0.1, 0.2])
    with pytest.raises(ValueError, match="2 names for 3 classes"):
        per_class_loss_rankings(np.ones((2, 3)), class_names=["a", "b"])
