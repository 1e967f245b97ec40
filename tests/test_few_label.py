"""Few-label probes: the stratified label budget (fraction or count per class, seeded) and ``probe --labels``."""

from __future__ import annotations

import re
import statistics
import sys

import numpy as np
import pytest
import torch

from jepa_lightning.callbacks.attentive_probe import TokenSet
from jepa_lightning.callbacks.linear_probe import LabelBudget, few_label_probe_accuracies, linear_probe_accuracy
from jepa_lightning.cli import label_seed_list, main
from tests.conftest import TINY_IJEPA

#: Four classes of 100, 50, 10 and 3 samples, shuffled, with 7 unlabelled samples (-1) among them.
SIZES = {0: 100, 1: 50, 2: 10, 3: 3, -1: 7}
LABELS = np.random.default_rng(123).permutation(np.concatenate([np.full(n, c) for c, n in SIZES.items()]))


@pytest.fixture(autouse=True)
def _plain_argv(monkeypatch):
    """LightningCLI warns when both ``args`` and pytest's own command line are present."""
    monkeypatch.setattr(sys, "argv", ["jepa-lightning"])


def class_counts(index: np.ndarray) -> dict[int, int]:
    classes, counts = np.unique(LABELS[index], return_counts=True)
    return dict(zip(classes.tolist(), counts.tolist(), strict=True))


def test_a_count_per_class_keeps_exactly_that_many_of_every_class_and_no_unlabelled_sample():
    index = LabelBudget(per_class=3).subset(LABELS, seed=0)
    assert class_counts(index) == {0: 3, 1: 3, 2: 3, 3: 3}
    assert np.all(np.diff(index) > 0)  # ascending, no repeats


def test_a_fraction_keeps_the_rounded_total_shared_out_in_proportion_to_the_classes():
    # 0.2 of 163 labelled samples: 32.6 -> 33; quotas 20, 10, 2, 0.6 -> the one left over goes to class 3
    index = LabelBudget(fraction=0.2).subset(LABELS, seed=0)
    assert class_counts(index) == {0: 20, 1: 10, 2: 2, 3: 1}
    # 0.5: 81.5 -> 82; quotas 50, 25, 5, 1.5 -> 81 by floors, the largest remainder (class 3) gets one more
    assert class_counts(LabelBudget(fraction=0.5).subset(LABELS, seed=0)) == {0: 50, 1: 25, 2: 5, 3: 2}
    everything = LabelBudget(fraction=1.0).subset(LABELS, seed=5)
    np.testing.assert_array_equal(everything, np.flatnonzero(LABELS >= 0))


def test_the_subset_is_fixed_by_its_seed_nested_across_budgets_and_leaves_the_global_random_state_alone():
    budget = LabelBudget(fraction=0.2)
    np.random.seed(1)
    torch.manual_seed(1)
    numpy_state, torch_state = np.random.get_state()[1].copy(), torch.get_rng_state()
    first = budget.subset(LABELS, seed=7)
    np.testing.assert_array_equal(np.random.get_state()[1], numpy_state)
    assert torch.equal(torch.get_rng_state(), torch_state)
    np.random.seed(2)
    torch.manual_seed(2)
    np.testing.assert_array_equal(budget.subset(LABELS, seed=7), first)
    assert not np.array_equal(budget.subset(LABELS, seed=8), first)
    larger = LabelBudget(fraction=0.5).subset(LABELS, seed=7)
    assert set(first) < set(larger)  # each class's samples are taken in one seeded order


def test_a_budget_that_empties_a_class_or_exceeds_it_is_refused_naming_the_class_and_the_budget():
    # 0.1 of 163: 16 samples; quotas 10, 5, 1, 0.3 -> class 3 would get none
    with pytest.raises(ValueError, match=r"10% of the training labels.*no sample of class 3 \(3 samples\)"):
        LabelBudget(fraction=0.1).subset(LABELS, seed=0)
    with pytest.raises(ValueError, match=r"4 training labels per class.*class 3 has 3\b"):
        LabelBudget(per_class=4).subset(LABELS, seed=0)
    with pytest.raises(ValueError, match="labelled samples"):
        LabelBudget(per_class=1).subset(np.full(5, -1), seed=0)
    for bad in ({}, {"fraction": 0.1, "per_class": 2}, {"fraction": 0.0}, {"fraction": 1.5}, {"per_class": 0}):
        with pytest.raises(ValueError, match=r"one of them|\(0, 1\]|>= 1"):
            LabelBudget(**bad)


def test_the_few_label_linear_probe_fits_on_the_subset_and_with_every_label_equals_the_full_probe():
    generator = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 40)
    features = generator.normal(size=(120, 4)) + labels[:, None]  # three separable clouds
    train, test = (features[::2], labels[::2]), (features[1::2], labels[1::2])
    full = linear_probe_accuracy(train, test)
    assert few_label_probe_accuracies(train, test, LabelBudget(fraction=1.0), [0, 1]) == [full, full]
    few = few_label_probe_accuracies(train, test, LabelBudget(per_class=2), [0, 1, 2])
    assert len(few) == 3 and len(set(few)) > 1  # three different subsets
    assert all(0.34 < accuracy <= 1 for accuracy in few)


def test_token_sets_draw_the_same_subset_as_the_labels():
    tokens = TokenSet(
        torch.arange(len(LABELS) * 2.0).view(-1, 1, 2),
        torch.ones(len(LABELS), 1, dtype=torch.bool),
        torch.from_numpy(LABELS),
    )
    subset = tokens.few_labels(LabelBudget(per_class=2), seed=3)
    index = LabelBudget(per_class=2).subset(LABELS, seed=3)
    assert torch.equal(subset.labels, torch.from_numpy(LABELS[index]))
    assert torch.equal(subset.features, tokens.features[torch.from_numpy(index)])


def test_label_seeds_separated_by_spaces_become_a_list():
    assert label_seed_list(["probe", "--label_seeds", "0", "1", "2", "--labels=0.1"]) == [
        "probe",
        "--label_seeds=[0, 1, 2]",
        "--labels=0.1",
    ]
    assert label_seed_list(["probe", "--label_seeds=[4]"]) == ["probe", "--label_seeds=[4]"]
    assert label_seed_list(["fit", "--label_seeds", "1"]) == ["fit", "--label_seeds", "1"]


def probe_lines(capsys, *args: str) -> list[str]:
    main(["probe", *TINY_IJEPA, *args])
    out = capsys.readouterr()
    return [line for line in (out.out + out.err).splitlines() if "probe accuracy on the val split" in line]


def test_probe_prints_one_line_per_label_seed_and_the_mean(capsys):
    lines = probe_lines(capsys, "--labels_per_class", "5", "--label_seeds", "0", "1", "2")
    assert len(lines) == 4
    accuracies = [float(line.rsplit(":", 1)[1]) for line in lines[:3]]
    for seed, line in enumerate(lines[:3]):
        assert line.startswith(
            f"Linear probe accuracy on the val split, fitted on 5 training labels per class, label seed {seed}: "
        )
    mean, std = map(float, re.search(r"seeds 0 1 2: (\S+) ± (\S+)$", lines[3]).groups())
    assert mean == pytest.approx(statistics.mean(accuracies), abs=1e-4)
    assert std == pytest.approx(statistics.stdev(accuracies), abs=1e-4)
    assert len(set(accuracies)) > 1 and all(0.1 < accuracy <= 1 for accuracy in accuracies)
    # the attentive head takes the budget too (shortened recipe: seconds, not the official 20 epochs)
    attentive = ["--head=attentive", "--attentive.epochs=2", "--attentive.batch_size=8"]
    lines = probe_lines(capsys, "--labels=0.05", "--label_seeds=[3]", *attentive)
    assert len(lines) == 2
    assert lines[0].startswith(
        "Attentive probe accuracy on the val split, fitted on 5% of the training labels, label seed 3: "
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--labels=0.001"], r"0\.1% of the training labels keeps 1 of 1438 .*no sample of class \d \(\d+ samples\)"),
        (["--labels_per_class=1000"], r"1000 training labels per class: more than the training split holds \(class 0"),
        (["--label_seeds", "0", "1"], "--labels or --labels_per_class"),
        (["--labels=2"], r"\(0, 1\]"),
        (["--labels=0.1", "--label_seeds=[1, 1]"], "distinct"),
    ],
)
def test_probe_refuses_a_budget_it_cannot_keep(capsys, args, message):
    with pytest.raises(SystemExit) as exit_:
        main(["probe", *TINY_IJEPA, *args])
    assert exit_.value.code == 1
    assert re.search(message, capsys.readouterr().err)
