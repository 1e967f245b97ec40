# ruff: noqa: RUF001  (IPA symbols are the test data)
"""SpokenWordDataModule on tiny WAVs and transcripts written here: batches, bad input, the phoneme tokenizer, edit
distances and nearest-string batches against brute force, CLAP-IPA's hard negatives, and espeak-ng rendering."""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from datamodules import spoken_words
from datamodules.spoken_words import (
    NearestWordSampler,
    PhonemeTokenizer,
    SpokenWordDataModule,
    edit_distances,
    nearest_groups,
    perturb_phonemes,
    phoneme_symbols,
    render_espeak,
)

RATE = 8000
#: word -> phoneme string; each word is a tone of its own pitch, "spoken" by two voices (two loudnesses).
WORDS = {
    "cat": "kˈæt",
    "bat": "bˈæt",
    "kit": "kˈɪt",
    "chip": "t͡ʃˈɪp",
    "sheep": "ʃˈiːp",
    "bit": "bˈɪt",
}


def write_corpus(folder: Path, voices: tuple[float, ...] = (0.3, 0.6), name: str = "transcript.tsv") -> Path:
    """One 0.25 s tone per (word, voice) under ``folder`` and a transcript naming them."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["file\tphonemes\tword"]
    t = np.arange(RATE // 4) / RATE
    for k, (word, phonemes) in enumerate(WORDS.items()):
        for v, loudness in enumerate(voices):
            soundfile.write(folder / f"{word}{v}.wav", loudness * np.sin(2 * np.pi * (200 + 80 * k) * t), RATE)
            lines.append(f"{word}{v}.wav\t{phonemes}\t{word}")
    (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder / name


def datamodule(path: Path, **kwargs) -> SpokenWordDataModule:
    defaults = {"sample_rate": RATE, "clip_seconds": 0.25, "batch_size": 4, "val_fraction": 0.25}
    return SpokenWordDataModule(path=str(path), **{**defaults, **kwargs})


def levenshtein(a: list[int] | str, b: list[int] | str) -> int:
    """The textbook dynamic programme, one pair at a time."""
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


# ------------------------------------------------------------------------------------------------ batches


def test_batches_pair_each_clip_with_its_phoneme_ids(tmp_path):
    dm = datamodule(write_corpus(tmp_path / "train"), test_path=str(write_corpus(tmp_path / "test", (0.9,))))
    spec = dm.input_spec
    assert (spec.modality, spec.channels, spec.length, spec.sample_rate) == ("audio", 1, RATE // 4, RATE)
    assert (
        spec.vocab_size == dm.tokenizer.vocab_size == 2 + len({s for p in WORDS.values() for s in phoneme_symbols(p)})
    )
    assert spec.num_classes == len(WORDS)
    batch = next(iter(dm.train_dataloader()))
    assert batch["x"].shape == (4, 1, RATE // 4) and batch["y"].shape == (4,) and "negative" not in batch
    assert batch["pair"].shape[0] == 4 and batch["pair"].shape[1] == max(int((row != 0).sum()) for row in batch["pair"])
    for label, ids in zip(batch["y"], batch["pair"], strict=True):
        assert dm.tokenizer.decode(ids) == dm.class_names[int(label)]
    test = next(iter(dm.eval_dataloader("test")))
    decoded = [dm.tokenizer.decode(ids) for ids in test["pair"]]
    assert decoded == list(WORDS.values())[:4]  # the test transcript's order
    dm.hard_negatives = True
    batch = next(iter(dm.train_dataloader()))
    assert batch["negative"].shape[0] == 4
    assert not any(torch.equal(a[a != 0], b[b != 0]) for a, b in zip(batch["pair"], batch["negative"], strict=True))


def test_a_folder_with_a_csv_transcript_reads_the_same(tmp_path):
    tsv = write_corpus(tmp_path)
    (tmp_path / "transcript.csv").write_text(tsv.read_text().replace("\t", ","), encoding="utf-8")
    tsv.unlink()
    dm = datamodule(tmp_path)
    assert len(dm.train_source) == 2 * len(WORDS)


# ------------------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda text: text.replace("bat1.wav", "gone.wav"), r"gone\.wav: expected an existing audio file"),
        (
            lambda text: text.replace("kˈɪt\tkit", "\tkit", 1),
            r"transcript\.tsv, line 6: expected a value in the 'phonemes'",
        ),
        (
            lambda text: text.replace("word", "spelling", 1),
            r"transcript\.tsv: expected a header .* unknown \['spelling'\]",
        ),
        (
            lambda text: text.replace("phonemes", "ipa", 1),
            r"transcript\.tsv: expected a header .* missing \['phonemes'\]",
        ),
        (lambda text: text.split("\n")[0] + "\n", r"transcript\.tsv: expected at least one spoken word"),
    ],
)
def test_bad_input_fails_before_training_naming_the_file_and_field(tmp_path, edit, match):
    path = write_corpus(tmp_path)
    path.write_text(edit(path.read_text(encoding="utf-8")), encoding="utf-8")
    with pytest.raises(ValueError, match=match):
        datamodule(path).setup("fit")


def test_too_long_strings_missing_paths_and_bad_settings_are_refused(tmp_path):
    path = write_corpus(tmp_path)
    with pytest.raises(ValueError, match=r"line 2, 'phonemes': expected at most max_phonemes=3 symbols, got 4"):
        datamodule(path, max_phonemes=3).setup("fit")
    with pytest.raises(FileNotFoundError, match="path='/nowhere'"):
        datamodule(Path("/nowhere")).setup("fit")
    with pytest.raises(ValueError, match="path/words: expected one source"):
        SpokenWordDataModule(path=str(path), words=["cat"], voices=["en"])
    with pytest.raises(ValueError, match="voices: expected at least one"):
        SpokenWordDataModule(words=["cat"])
    with pytest.raises(ValueError, match="batching: expected one of"):
        datamodule(path, batching="hardest")


def test_skipped_files_take_their_transcripts_with_them(tmp_path):
    path = write_corpus(tmp_path)
    soundfile.write(tmp_path / "cat0.wav", np.zeros(RATE // 4), RATE)  # silent: a bad file
    with pytest.raises(ValueError, match=r"cat0\.wav: expected a clip with sound"):
        datamodule(path).setup("fit")
    dm = datamodule(path, on_bad_file="skip")
    with pytest.warns(UserWarning, match="left out 1 of 12"):
        dm.setup("fit")
    assert len(dm.train_source) == 11
    batch = next(iter(dm.eval_dataloader("all")))
    assert dm.tokenizer.decode(batch["pair"][0]) == WORDS["cat"]  # cat1, the first file left
    assert [dm.class_names[int(y)] for y in batch["y"]] == [dm.tokenizer.decode(ids) for ids in batch["pair"]]


# ------------------------------------------------------------------------------------------------ tokenizer


def test_ipa_symbols_keep_diacritics_length_and_ties_and_spaced_strings_split_on_spaces():
    assert phoneme_symbols("t͡ʃˈiːz") == ["t͡ʃ", "ˈ", "iː", "z"]
    assert phoneme_symbols("pʰæ̃n") == ["pʰ", "æ̃", "n"]
    assert phoneme_symbols(" k ae1 t ") == ["k", "ae1", "t"]


def test_the_tokenizer_round_trips_its_corpus_and_marks_unknown_symbols():
    corpus = [*WORDS.values(), "ʃˈiːp", "pʰæ̃n"]
    tokenizer = PhonemeTokenizer.build(corpus)
    assert tokenizer.symbols[:2] == ("ˈ", "t")  # most frequent first (ties in code-point order)
    for text in corpus:
        ids = tokenizer.encode(text)
        assert min(ids) >= 2 and tokenizer.decode(ids) == text
    assert tokenizer.encode("kˈæʒ")[-1] == spoken_words.UNKNOWN
    spaced = PhonemeTokenizer.build(["k ae t", "b ae t"])
    assert spaced.decode(spaced.encode("t ae k")) == "t ae k"


# ------------------------------------------------------------------------------------------------ hard negatives


def random_strings(count: int, seed: int) -> list[list[int]]:
    draw = random.Random(seed)
    return [[draw.randint(2, 6) for _ in range(draw.randint(1, 7))] for _ in range(count)]


def test_edit_distances_equal_the_textbook_programme():
    a, b = [*random_strings(40, 0), []], random_strings(30, 1)
    expected = np.array([[levenshtein(x, y) for y in b] for x in a])
    np.testing.assert_array_equal(edit_distances(a, b, block=16), expected)


def test_nearest_groups_hold_the_anchors_nearest_distinct_strings():
    strings = random_strings(25, 2)
    words = np.array([k % 25 for k in range(60)])  # 25 strings, most spoken by 2-3 voices
    distances = np.array([[levenshtein(x, y) for y in strings] for x in strings])
    size = 8
    groups = nearest_groups(words, distances, size, np.random.default_rng(3))
    assert sorted(p for g in groups for p in g) == list(range(60))
    assert [len(g) for g in groups] == [8] * 7 + [4]
    anchor, *members = groups[0]
    others = sorted({int(w) for w in words} - {int(words[anchor])}, key=lambda w: distances[words[anchor], w])
    brute = sorted(distances[words[anchor], w] for w in others)[: size - 1]
    assert sorted(distances[words[anchor], words[members]]) == brute
    assert len({int(words[p]) for p in groups[0]}) == size  # one item per distinct string
    shuffled = np.random.default_rng(4).permutation(60)[:size]
    assert sorted(distances[words[shuffled[0]], words[shuffled[1:]]]) != brute  # a random batch is not as near


def test_the_nearest_sampler_deals_whole_groups_to_ranks_and_resumes(tmp_path):
    dm = datamodule(write_corpus(tmp_path, (0.2, 0.4, 0.6, 0.8)), batching="nearest", val_fraction=0.0)
    loader = dm.train_dataloader()
    assert isinstance(loader.sampler, NearestWordSampler)
    first = [batch["y"].tolist() for batch in loader]
    assert all(len(set(labels)) == 4 for labels in first[:-1])  # the last batch takes the repeats left over
    words, distances = loader.sampler.words, dm.distances
    for rank in (0, 1):
        sampler = NearestWordSampler(loader.dataset, words, distances, 4, num_replicas=2, rank=rank, seed=0)
        assert len(list(sampler)) == sampler.num_samples == 12
    sampler = NearestWordSampler(loader.dataset, words, distances, 4, num_replicas=1, rank=0, seed=0)
    whole = list(sampler)
    sampler.resume_at = (0, 8)
    assert list(sampler) == whole[8:]


def test_perturbed_strings_are_near_misses_never_the_string():
    generator = torch.Generator().manual_seed(0)
    for ids in random_strings(300, 5):
        negative = perturb_phonemes(ids, vocab_size=7, fraction=0.0, generator=generator)
        assert negative and levenshtein(ids, negative) == 1
        several = perturb_phonemes(ids, vocab_size=7, fraction=0.5, generator=generator)
        assert several and several != ids and levenshtein(ids, several) <= max(1, round(0.5 * len(ids)))
        assert min(several) >= 2 and max(several) <= 6


# official: lingjzhu/clap-ipa@a6786fa63532a130ede92100438078ce34299412 clap/data.py::augment, generate_hard_negative
def official_augment(character, phoneset, no_del=False):
    action = np.random.uniform()
    if no_del:
        action = action * 0.66
    if action <= 0.33:
        return random.choice(phoneset)
    if action <= 0.66:
        return character + random.choice(phoneset)
    return " "


def official_generate_hard_negative(seq, phoneset, prob=0.3):
    if len(seq) == 1:
        negative = official_augment(seq, phoneset, no_del=True)
    else:
        if prob == 0:
            size = 1
        else:
            size = round(prob * len(seq))
            size = max(size, 1)
        idx = np.random.uniform(size=size)
        idx = {round(i * len(seq)) for i in idx}
        negative = "".join([c if i not in idx else official_augment(c, phoneset) for i, c in enumerate(seq)]).replace(
            " ", ""
        )
    return negative


def test_the_official_hard_negative_is_sometimes_the_positive_ours_never():
    """Upstream bug we fix: the edited index ``round(u * n)`` may be ``n`` (past the end) and a replacement may draw
    the same phone, so some of CLAP-IPA's "negatives" are the positive itself; with ``negative_prob`` 0 (words) the
    official edit otherwise changes one symbol, as ours does."""
    np.random.seed(0)
    random.seed(0)
    phoneset = list("ptkbdgæɪ")
    words = ["pæt", "kɪt", "bæd", "tɪk"] * 100
    official = [official_generate_hard_negative(word, phoneset, prob=0) for word in words]
    unchanged = sum(negative == word for negative, word in zip(official, words, strict=True))
    assert unchanged > 0
    assert all(levenshtein(word, negative) <= 1 for negative, word in zip(official, words, strict=True))
    tokenizer = PhonemeTokenizer.build(phoneset)
    generator = torch.Generator().manual_seed(0)
    ours = [perturb_phonemes(tokenizer.encode(w), tokenizer.vocab_size, 0.0, generator) for w in words]
    assert all(levenshtein(tokenizer.encode(w), n) == 1 for n, w in zip(ours, words, strict=True))


# ------------------------------------------------------------------------------------------------ espeak-ng


def test_a_missing_espeak_names_the_package(monkeypatch, tmp_path):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(FileNotFoundError, match="apt-get install espeak-ng"):
        render_espeak(["cat"], ["en-us"], tmp_path / "out")


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs Debian's espeak-ng")
def test_espeak_renders_words_with_its_own_ipa_once(monkeypatch, tmp_path):
    monkeypatch.setenv("JEPA_LIGHTNING_CACHE", str(tmp_path))
    dm = SpokenWordDataModule(words=["cat", "chip"], voices=["en-us+m1"], test_voices=["en-us+f2"], val_fraction=0.0)
    dm.batch_size = 2
    spec = dm.input_spec
    assert spec.vocab_size == dm.tokenizer.vocab_size and len(dm.test_source) == 2
    expected = [
        subprocess.run(["espeak-ng", "-q", "--ipa", "-v", "en-us", w], capture_output=True, text=True).stdout.strip()
        for w in ("cat", "chip")
    ]
    batch = next(iter(dm.eval_dataloader("all")))
    assert [dm.tokenizer.decode(ids) for ids in batch["pair"]] == expected
    transcripts = sorted(tmp_path.glob("spoken-words/*/*/transcript.tsv"))
    assert len(transcripts) == 2
    stamp = transcripts[0].stat().st_mtime_ns
    SpokenWordDataModule(words=["cat", "chip"], voices=["en-us+m1"], val_fraction=0.0).setup("fit")
    assert transcripts[0].stat().st_mtime_ns == stamp  # reused, not rendered again
