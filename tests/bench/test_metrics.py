import numpy as np
import pytest

from bench.metrics import composite, evaluate, is_valid, objective

CLASSES = ("performing", "extended", "defaulted")


def test_macro_recall_f1_hand_computed():
    y = np.array([0, 0, 0, 1, 1, 2])
    pred = np.array([0, 0, 1, 1, 0, 2])
    proba = np.eye(3)[pred] * 0.7 + 0.1
    ev = evaluate(y, proba, CLASSES)
    # per-class recall: 2/3, 1/2, 1/1
    assert ev["recall"] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    # precision: 2/3, 1/2, 1 -> F1 = 2/3, 1/2, 1
    assert ev["f1"] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    assert ev["per_class_recall"] == pytest.approx({"performing": 2 / 3, "extended": 0.5, "defaulted": 1.0})
    assert ev["confusion_matrix"] == [[2, 1, 0], [1, 1, 0], [0, 0, 1]]
    assert ev["valid"] is True


def test_map_and_auc_hand_computed():
    y = np.array([0, 0, 1, 1])
    p1 = np.array([0.1, 0.6, 0.4, 0.9])  # class-1 scores: ranking 0.9(+) 0.6(-) 0.4(+) 0.1(-)
    proba = np.stack([1 - p1, p1], axis=1)
    ev = evaluate(y, proba, ("a", "b"))
    # AUC class 1: pairs (pos, neg): (0.4>0.1),(0.4<0.6),(0.9>0.1),(0.9>0.6) -> 3/4; class 0 symmetric
    assert ev["auc"] == pytest.approx(0.75)
    # AP class 1: precision at hits: 1/1, 2/3 -> (1 + 2/3)/2
    ap1 = (1 + 2 / 3) / 2
    # AP class 0 on scores 1-p1: ranking 0.9(+),0.6(-),0.4(+),0.1(-) -> same
    assert ev["map"] == pytest.approx(ap1)


def test_composite_and_penalty_follow_appendix_c():
    s = {"recall": 0.5, "f1": 0.4, "auc": 0.9, "map": 0.6}
    c = 0.4 * 0.5 + 0.25 * 0.4 + 0.25 * 0.9 + 0.1 * 0.6
    assert composite(s) == pytest.approx(c)
    assert objective(s, 3, 3) == pytest.approx(c)
    assert objective(s, 2, 3) == pytest.approx(0.5 * c + 0.3 * 2 / 3)


def test_validity_rule_requires_every_class():
    proba = np.array([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.6, 0.2, 0.2]])
    assert not is_valid(proba, 3)
    assert is_valid(np.vstack([proba, [0.1, 0.1, 0.8]]), 3)
    ev = evaluate(np.array([0, 1, 2]), proba, CLASSES)
    assert ev["valid"] is False and ev["n_predicted_classes"] == 2
