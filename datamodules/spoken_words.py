"""Spoken words paired with their phoneme strings, for acoustic-phonetic word embeddings (two-tower methods).

Batches ``{"x": float (B, 1, T) waveforms (the audio datamodule's clips), "y": long (B,) the id of each item's phoneme
string, "pair": long (B, L) its phoneme token ids (0 = padding, ``L`` the batch's longest string), "negative": long
(B, L') a perturbed phoneme string per item (training batches, when ``hard_negatives`` is on)}``.

Two sources. A **transcript** (``path``): a CSV or TSV file (or a folder holding ``transcript.tsv`` or
``transcript.csv``) with the columns ``file`` (a WAV / FLAC / OGG file, relative paths resolving against the
transcript's folder) and ``phonemes`` (the word's phoneme string), and optionally ``word`` (its spelling, kept for
reading only). **espeak-ng** (``words``): every word spoken offline by Debian's ``espeak-ng`` in every voice of
``voices`` (and of ``test_voices``, the held-out test set), each at a seeded speed and pitch, with espeak-ng's own IPA
of that utterance as its phoneme string; written once under the cache (:func:`datamodules.base.cache_root`) as WAV
files and a transcript, the form ``path`` reads.

Phoneme strings are cut into symbols (:func:`phoneme_symbols`): on whitespace when a string has any (``"k ae t"``),
otherwise IPA symbols (a character with its combining diacritics, length and secondary-articulation marks, and
tie-barred pairs as one symbol). :class:`PhonemeTokenizer` numbers the symbols of the training source (0 = padding,
1 = unknown). Bad input fails before training with an error naming the file and field: a transcript without the
``file`` / ``phonemes`` columns or with an unknown column, an empty cell, a string longer than ``max_phonemes``
symbols, and every check of :class:`~datamodules.audio.AudioDataModule` on the audio files (missing, unreadable,
silent, ...), handled as ``on_bad_file`` says.

Hard negatives, two kinds. ``batching="nearest"`` (:class:`NearestWordSampler`) fills each training batch with an
anchor item and the items whose phoneme strings are nearest to its string in edit distance (distinct strings first),
so the batch's other items are near misses. ``hard_negatives=True`` (switched on by
:class:`~jepa_lightning.methods.AcousticWordEmbedding`) adds to each training item a perturbed copy of its phoneme
string (:func:`perturb_phonemes`: CLAP-IPA's replace / insert / delete edits), which the method scores as a negative.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import random
import shutil
import subprocess
import unicodedata
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, default_collate

from datamodules.audio import AudioClipSource, AudioDataModule
from datamodules.base import (
    CHECK_WORKERS,
    EpochSeededSampler,
    SampleSource,
    Transform,
    cache_root,
    check_files,
    invalid,
    require_path,
)
from jepa_lightning.inputs import InputSpec

PAD, UNKNOWN = 0, 1
#: What a decoded unknown symbol reads as.
UNKNOWN_SYMBOL = "\ufffd"
#: Marks that belong to the symbol before them (length, aspiration, secondary articulations, rhoticity, glottalisation).
ATTACHED = frozenset("ːˑʰʷʲˠˤⁿˀ˞")
#: Combining tie bars: the symbol before them and the one after them are one symbol (``t͡ʃ``).
TIE_BARS = frozenset("\u0361\u035c")
TRANSCRIPT_COLUMNS = ("file", "phonemes")
OPTIONAL_COLUMNS = ("word",)
TRANSCRIPT_NAMES = ("transcript.tsv", "transcript.csv")
#: espeak-ng's seeded speaking rate (words per minute) and pitch (0-99) ranges, per (word, voice).
ESPEAK_SPEED, ESPEAK_PITCH = (140, 190), (35, 65)
Batching = Literal["random", "nearest"]


# --------------------------------------------------------------------------------------------- phoneme strings


def phoneme_symbols(text: str) -> list[str]:
    """The symbols of a phoneme string: its whitespace-separated tokens when it has whitespace inside, otherwise IPA
    symbols (each character with the combining marks and :data:`ATTACHED` marks after it; characters joined by a
    tie bar are one symbol)."""
    text = text.strip()
    if any(character.isspace() for character in text):
        return text.split()
    symbols: list[str] = []
    join_next = False
    for character in text:
        if symbols and (join_next or unicodedata.combining(character) or character in ATTACHED):
            symbols[-1] += character
        else:
            symbols.append(character)
        join_next = character in TIE_BARS
    return symbols


@dataclasses.dataclass(frozen=True)
class PhonemeTokenizer:
    """Phoneme strings <-> token ids: ``symbols[k]`` is id ``k + 2`` (0 = padding, 1 = unknown); ``separator`` joins
    decoded symbols (a space for whitespace-separated transcripts, nothing for IPA)."""

    symbols: tuple[str, ...]
    separator: str = ""

    @classmethod
    def build(cls, transcripts: Sequence[str]) -> PhonemeTokenizer:
        """The symbols of ``transcripts``, most frequent first (ties in code-point order)."""
        counts = Counter(symbol for text in transcripts for symbol in phoneme_symbols(text))
        spaced = any(any(character.isspace() for character in text.strip()) for text in transcripts)
        return cls(tuple(sorted(counts, key=lambda symbol: (-counts[symbol], symbol))), " " if spaced else "")

    @property
    def vocab_size(self) -> int:
        """Token ids ``0 .. vocab_size - 1``."""
        return len(self.symbols) + 2

    def encode(self, text: str) -> list[int]:
        """The ids of ``text``'s symbols (1 for a symbol outside the vocabulary)."""
        index = {symbol: k + 2 for k, symbol in enumerate(self.symbols)}
        return [index.get(symbol, UNKNOWN) for symbol in phoneme_symbols(text)]

    def decode(self, ids: Sequence[int]) -> str:
        """The phoneme string of ``ids`` (padding left out, unknown ids as :data:`UNKNOWN_SYMBOL`)."""
        return self.separator.join(
            self.symbols[i - 2] if i >= 2 else UNKNOWN_SYMBOL for i in (int(i) for i in ids) if i != PAD
        )


def pad_ids(strings: Sequence[Sequence[int]]) -> Tensor:
    """Token id lists as one zero-padded ``long (N, L)`` tensor, ``L`` the longest."""
    out = torch.zeros(len(strings), max((len(s) for s in strings), default=0), dtype=torch.long)
    for row, ids in enumerate(strings):
        out[row, : len(ids)] = torch.as_tensor(list(ids), dtype=torch.long)
    return out


def edit_distances(a: Sequence[Sequence[int]], b: Sequence[Sequence[int]], block: int = 64) -> np.ndarray:
    """Levenshtein distances (unit insertions, deletions, substitutions) of every string of ``a`` to every string of
    ``b``, ``int32 (len(a), len(b))``; the dynamic programme runs over symbol positions, vectorised over all pairs of
    ``block`` rows of ``a`` at a time."""
    b_codes, b_lengths = _padded(b, -1)
    out = np.empty((len(a), len(b)), dtype=np.int32)
    columns = np.arange(len(b))
    for start in range(0, len(a), block):
        codes, lengths = _padded(a[start : start + block], -2)
        rows = out[start : start + len(codes)]
        rows[lengths == 0] = b_lengths
        prev = np.broadcast_to(
            np.arange(b_codes.shape[1] + 1, dtype=np.int32), (len(codes), len(b), b_codes.shape[1] + 1)
        )
        for i in range(1, codes.shape[1] + 1):
            cost = (codes[:, None, i - 1, None] != b_codes[None]).astype(np.int32)
            best = np.minimum(prev[..., :-1] + cost, prev[..., 1:] + 1)  # substitution, deletion
            current = np.empty_like(prev)
            current[..., 0] = i
            for j in range(1, b_codes.shape[1] + 1):
                current[..., j] = np.minimum(best[..., j - 1], current[..., j - 1] + 1)  # insertion
            prev = current
            done = lengths == i
            rows[done] = current[done][:, columns, b_lengths]
    return out


def _padded(strings: Sequence[Sequence[int]], fill: int) -> tuple[np.ndarray, np.ndarray]:
    """Strings as an ``int64 (N, L)`` array padded with ``fill``, and their lengths."""
    lengths = np.array([len(s) for s in strings], dtype=np.int64)
    codes = np.full((len(strings), int(lengths.max(initial=0))), fill, dtype=np.int64)
    for row, ids in enumerate(strings):
        codes[row, : len(ids)] = list(ids)
    return codes, lengths


def perturb_phonemes(ids: Sequence[int], vocab_size: int, fraction: float, generator: torch.Generator) -> list[int]:
    """A hard negative of a phoneme string (CLAP-IPA's ``generate_hard_negative``): ``max(1, round(fraction * n))``
    distinct positions of the ``n`` symbols, each replaced by another symbol, followed by an inserted symbol or
    deleted, with equal chances (no deletion that would empty the string); symbols drawn uniformly from the
    vocabulary (ids ``2 .. vocab_size - 1``). Never the string itself: edits that cancel out (an insertion that
    restores a deleted neighbour) give way to one replacement."""
    ids = [int(i) for i in ids]
    symbols = vocab_size - 2
    if not ids or symbols < 2:
        raise ValueError(f"perturb_phonemes needs a non-empty string and 2+ symbols, got {ids} and {symbols}")

    def draw(high: int) -> int:
        return int(torch.randint(high, (), generator=generator))

    def other(symbol: int) -> int:
        replacement = 2 + draw(symbols - 1)
        return replacement + (replacement >= symbol)

    edits = min(len(ids), max(1, round(fraction * len(ids))))
    positions = set(torch.randperm(len(ids), generator=generator)[:edits].tolist())
    out: list[int] = []
    deleted = 0
    for position, symbol in enumerate(ids):
        if position not in positions:
            out.append(symbol)
            continue
        action = draw(3 if deleted < len(ids) - 1 else 2)
        if action == 0:
            out.append(other(symbol))
        elif action == 1:
            out += [symbol, 2 + draw(symbols)]
        else:
            deleted += 1
    if out == ids:
        position = draw(len(ids))
        out[position] = other(ids[position])
    return out


# --------------------------------------------------------------------------------------------- hard-negative batches


def nearest_groups(
    words: np.ndarray, distances: np.ndarray, size: int, generator: np.random.Generator
) -> list[list[int]]:
    """Items ``0 .. N-1`` (``words[i]`` the id of item i's string, ``distances`` between string ids) in groups of
    ``size``: in a random order, each item not yet grouped is an anchor and takes the ungrouped items nearest to it in
    edit distance, one per distinct string other than its own (ties in the random order); when fewer distinct strings
    are left, the nearest remaining items fill the group. The last group may be smaller."""
    n = len(words)
    order = generator.permutation(n)
    rank_of = np.empty(n, dtype=np.int64)
    rank_of[order] = np.arange(n)
    free = np.ones(n, dtype=bool)
    groups: list[list[int]] = []
    for anchor in order:
        if not free[anchor]:
            continue
        free[anchor] = False
        candidates = np.flatnonzero(free)
        candidates = candidates[
            np.argsort(distances[words[anchor], words[candidates]].astype(np.int64) * n + rank_of[candidates])
        ]
        distinct = candidates[words[candidates] != words[anchor]]
        _, first = np.unique(words[distinct], return_index=True)
        chosen = distinct[np.sort(first)][: size - 1]
        if len(chosen) < size - 1:
            rest = candidates[~np.isin(candidates, chosen)]
            chosen = np.concatenate([chosen, rest[: size - 1 - len(chosen)]])
        free[chosen] = False
        groups.append([int(anchor), *chosen.tolist()])
    return groups


class NearestWordSampler(EpochSeededSampler):
    """The training sampler of ``batching="nearest"``: each epoch (seeded by ``seed + epoch``) groups the training
    positions with :func:`nearest_groups` into batches of ``batch_size``; under DDP the groups are dealt to the ranks
    in turn, and each rank's list is cut or wrapped around to the sampler's per-rank length (a few items of an epoch
    may be left out or seen twice). Resumes mid-epoch like :class:`~datamodules.base.EpochSeededSampler`."""

    def __init__(
        self,
        dataset: Dataset,
        words: np.ndarray,
        distances: np.ndarray,
        batch_size: int,
        num_replicas: int,
        rank: int,
        seed: int,
    ) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)
        self.words = words
        self.distances = distances
        self.batch_size = batch_size

    def __iter__(self) -> Iterator[tuple[int, int]]:  # type: ignore[override]
        epoch, start = self.epoch, self.starting_position()
        self.resume_at = None
        groups = nearest_groups(self.words, self.distances, self.batch_size, np.random.default_rng(self.seed + epoch))
        mine = [position for group in groups[self.rank :: self.num_replicas] for position in group]
        mine = (mine * (self.num_samples // max(len(mine), 1) + 1))[: self.num_samples]
        return ((position, epoch) for position in mine[start:])


# --------------------------------------------------------------------------------------------- reading


def read_transcript(path: Path, max_phonemes: int) -> tuple[list[Path], list[str]]:
    """Audio files and phoneme strings of a transcript (CSV, or TSV by its ``.tsv`` suffix; see the module
    docstring); a ValueError naming the file (and line) for a missing or unknown column, an empty cell or a string of
    more than ``max_phonemes`` symbols."""
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            table = csv.DictReader(handle, delimiter=delimiter)
            rows = list(table)
            columns = list(table.fieldnames or [])
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise invalid(path, "a readable UTF-8 transcript", f"{type(error).__name__}: {error}") from error
    missing = [name for name in TRANSCRIPT_COLUMNS if name not in columns]
    unknown = [name for name in columns if name not in TRANSCRIPT_COLUMNS + OPTIONAL_COLUMNS]
    if missing or unknown:
        raise invalid(
            path,
            f"a header row with the columns {list(TRANSCRIPT_COLUMNS)} (optionally {list(OPTIONAL_COLUMNS)})",
            "; ".join(
                [f"columns {columns}"]
                + [f"{what} {names}" for what, names in (("missing", missing), ("unknown", unknown)) if names]
            ),
        )
    if not rows:
        raise invalid(path, "at least one spoken word", "a header row only")
    files: list[Path] = []
    texts: list[str] = []
    for line, row in enumerate(rows, start=2):
        for column in TRANSCRIPT_COLUMNS:
            if not (row.get(column) or "").strip():
                raise invalid(f"{path}, line {line}", f"a value in the {column!r} column", "an empty cell")
        text = row["phonemes"].strip()
        if len(phoneme_symbols(text)) > max_phonemes:
            raise invalid(
                f"{path}, line {line}, 'phonemes'",
                f"at most max_phonemes={max_phonemes} symbols",
                f"{len(phoneme_symbols(text))} in {text!r}",
            )
        file = Path(row["file"].strip()).expanduser()
        files.append(file if file.is_absolute() else path.parent / file)
        texts.append(text)
    return files, texts


def transcript_file(path: str, field: str) -> Path:
    """The transcript that ``path`` names: the file itself or a folder's ``transcript.tsv`` / ``transcript.csv``."""
    resolved = require_path(path, field)
    if resolved.is_dir():
        for name in TRANSCRIPT_NAMES:
            if (resolved / name).is_file():
                return resolved / name
        raise invalid(
            f"{field}={path!r}", f"a transcript file or a folder holding one of {list(TRANSCRIPT_NAMES)}", "none"
        )
    if resolved.suffix.lower() not in (".csv", ".tsv"):
        raise invalid(f"{field}={path!r}", "a .csv or .tsv transcript (or a folder holding one)", "another file")
    return resolved


def espeak_executable() -> str:
    """The path of ``espeak-ng``; a FileNotFoundError naming the Debian package when it is not installed."""
    found = shutil.which("espeak-ng")
    if found is None:
        raise FileNotFoundError(
            "words=... renders spoken words with espeak-ng, which is not installed: `apt-get install espeak-ng` "
            "(Debian / Ubuntu), or pass path= (a transcript of your own recordings)"
        )
    return found


def render_espeak(words: Sequence[str], voices: Sequence[str], folder: Path) -> Path:
    """Speak every word in every voice with espeak-ng, offline, and return ``folder/transcript.tsv``.

    Writes ``folder/<voice>/<k>.wav`` (word ``k`` of ``words``; speed and pitch drawn per (word, voice) from a seeded
    generator in :data:`ESPEAK_SPEED` / :data:`ESPEAK_PITCH`) and a transcript whose phoneme string is espeak-ng's own
    IPA of that utterance (``--ipa``). A finished folder is reused as it is; an interrupted one is redone.
    """
    transcript = folder / TRANSCRIPT_NAMES[0]
    if transcript.is_file():
        return transcript
    espeak = espeak_executable()
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    jobs = [(voice, k, word) for voice in voices for k, word in enumerate(words)]
    for voice in voices:
        (partial / voice).mkdir(parents=True)

    def speak(job: tuple[str, int, str]) -> list[str]:
        voice, k, word = job
        draw = random.Random(f"{word}/{voice}")
        speed, pitch = draw.randint(*ESPEAK_SPEED), draw.randint(*ESPEAK_PITCH)
        wav = partial / voice / f"{k:05d}.wav"
        command = [espeak, "-v", voice, "-s", str(speed), "-p", str(pitch), "--ipa", "-w", str(wav), word]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        ipa = " ".join(result.stdout.split())
        if result.returncode or not ipa or not wav.is_file():
            raise invalid(
                f"espeak-ng -v {voice} {word!r}", "a WAV file and its IPA", result.stderr.strip() or "nothing"
            )
        return [f"{voice}/{k:05d}.wav", ipa.replace(" ", ""), word]

    with ThreadPoolExecutor(CHECK_WORKERS) as pool:
        rows = list(pool.map(speak, jobs))
    with (partial / transcript.name).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow([*TRANSCRIPT_COLUMNS, *OPTIONAL_COLUMNS])
        writer.writerows(rows)
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    return transcript


# --------------------------------------------------------------------------------------------- source and batches


class SpokenWordSource(AudioClipSource):
    """Clips and their positions: ``load`` returns ``(clip float32 (1, T), index)``; ``labels`` are the items' string
    ids. Clips are kept in memory once read when ``cache``."""

    def load(self, index: int) -> tuple[Tensor, int]:  # type: ignore[override]
        return super().load(index), index


class WordTransform:
    """``(clip, index)`` -> ``{"clip": transform(clip), "index": index, "draw": ...}``; the draw (from torch's RNG,
    which the base seeds per (seed, epoch, sample)) seeds the item's hard negative in training, 0 in evaluation."""

    def __init__(self, transform: Transform, training: bool) -> None:
        self.transform = transform
        self.training = training

    def __call__(self, sample: tuple[Tensor, int]) -> dict[str, Any]:
        clip, index = sample
        draw = int(torch.randint(0, 2**62, ())) if self.training else 0
        return {"clip": self.transform(clip), "index": index, "draw": draw}


class WordBatcher:
    """Collates items of :class:`WordTransform` into the batch contract of the module docstring (picklable, for
    DataLoader workers): the clips, the string ids, the padded phoneme ids and, with ``negatives``, one perturbed
    string per item (:func:`perturb_phonemes`, seeded by the item's draw)."""

    def __init__(self, phonemes: list[list[int]], vocab_size: int, negatives: bool, fraction: float) -> None:
        self.phonemes = phonemes
        self.vocab_size = vocab_size
        self.negatives = negatives
        self.fraction = fraction

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        words = [item["x"] for item in items]
        strings = [self.phonemes[word["index"]] for word in words]
        batch: dict[str, Any] = {
            "x": torch.stack([word["clip"] for word in words]),
            "y": torch.tensor([item["y"] for item in items], dtype=torch.long),
            "pair": pad_ids(strings),
        }
        if "views" in items[0]:
            views = default_collate([[view["clip"] for view in item["views"]] for item in items])
            batch["views"] = views
        if self.negatives:
            batch["negative"] = pad_ids(
                [
                    perturb_phonemes(ids, self.vocab_size, self.fraction, torch.Generator().manual_seed(word["draw"]))
                    for ids, word in zip(strings, words, strict=True)
                ]
            )
        return batch


# --------------------------------------------------------------------------------------------- datamodule


class SpokenWordDataModule(AudioDataModule):
    """Spoken words and their phoneme strings (see the module docstring for the sources and the batch contract).

    Args:
        path: a transcript (CSV / TSV, or a folder holding ``transcript.tsv`` / ``transcript.csv``) of the training
            source (split into train / val by ``val_fraction``).
        test_path: an optional held-out transcript in the form of ``path``.
        words: instead of ``path``: words that espeak-ng speaks in every voice of ``voices`` (the training source)
            and of ``test_voices`` (the test set, when given); a list or a text file of one word per line.
        voices, test_voices: espeak-ng voices (``-v``), e.g. ``en-us+m1`` (an accent and a voice variant). Voices of
            one accent give the same IPA, so held-out voices of the training accents test new speakers of known
            strings.
        max_phonemes: longest phoneme string accepted (symbols).
        batching: ``"random"`` (shuffled batches) or ``"nearest"`` (:class:`NearestWordSampler`: each batch an anchor
            and the items with the nearest phoneme strings, in-batch hard negatives).
        hard_negatives: add ``batch["negative"]`` (a perturbed phoneme string per item) to training batches; a method
            that scores them switches it on.
        negative_fraction: share of a string's symbols that a hard negative edits (at least one).
        kwargs: the audio settings of :class:`~datamodules.audio.AudioDataModule` (``sample_rate``, ``clip_seconds``,
            ``on_bad_file``, ``cache``, ...) and the loader, split and seeding settings of the base.
    """

    def __init__(
        self,
        path: str | None = None,
        test_path: str | None = None,
        words: list[str] | str | None = None,
        voices: list[str] | None = None,
        test_voices: list[str] | None = None,
        max_phonemes: int = 64,
        batching: Batching = "random",
        hard_negatives: bool = False,
        negative_fraction: float = 0.0,
        clip_seconds: float = 1.0,
        batch_size: int = 64,
        **kwargs: Any,
    ) -> None:
        super().__init__(path=path, test_path=test_path, clip_seconds=clip_seconds, batch_size=batch_size, **kwargs)
        if (path is None) == (words is None):
            raise invalid(
                "path/words",
                "one source: a transcript (path) or words for espeak-ng (words)",
                "both" if path else "none",
            )
        if words is not None and not voices:
            raise invalid("voices", "at least one espeak-ng voice for words=...", repr(voices))
        if words is not None and test_path is not None:
            raise invalid("test_path", "None with words=... (test_voices make the test set)", repr(test_path))
        if batching not in get_args(Batching):
            raise invalid("batching", f"one of {get_args(Batching)}", repr(batching))
        if max_phonemes < 1:
            raise invalid("max_phonemes", "an integer >= 1", repr(max_phonemes))
        if not 0.0 <= negative_fraction <= 1.0:
            raise invalid("negative_fraction", "a fraction in [0, 1]", repr(negative_fraction))
        self.words = words
        self.voices = list(voices or [])
        self.test_voices = list(test_voices or [])
        self.max_phonemes = max_phonemes
        self.batching = batching
        self.hard_negatives = hard_negatives
        self.negative_fraction = negative_fraction
        self.tokenizer: PhonemeTokenizer | None = None
        self.strings: list[tuple[int, ...]] = []
        self._phonemes: tuple[list[list[int]], list[list[int]]] = ([], [])
        self._distances: np.ndarray | None = None

    # ----------------------------------------------------------------- indexing

    def word_list(self) -> list[str]:
        """The words for espeak-ng: the list, or the lines of the file ``words`` names (blank lines left out)."""
        if isinstance(self.words, str):
            listed = require_path(self.words, "words").read_text(encoding="utf-8").splitlines()
        else:
            listed = list(self.words or [])
        words = [word.strip() for word in listed if word.strip()]
        if not words:
            raise invalid("words", "at least one word", "none")
        return words

    def espeak_transcripts(self) -> tuple[Path, Path | None]:
        """Render (once) the training and test voices' recordings; their transcripts."""
        words = self.word_list()
        version = subprocess.run([espeak_executable(), "--version"], capture_output=True, text=True).stdout
        key = hashlib.sha1(repr((words, version.strip())).encode()).hexdigest()[:16]
        root = cache_root() / "spoken-words" / key

        def render(voices: list[str]) -> Path:
            name = hashlib.sha1("\n".join(voices).encode()).hexdigest()[:12]
            return render_espeak(words, voices, root / name)

        return render(self.voices), (render(self.test_voices) if self.test_voices else None)

    def index_sources(self) -> tuple[SampleSource, SampleSource | None]:
        """Read the transcripts (rendering espeak-ng's first), build the tokenizer on the training source's strings,
        and read and check every audio file."""
        if self.words is not None:
            train_transcript, test_transcript = self.espeak_transcripts()
        else:
            assert self.path is not None  # one source is given (checked in __init__)
            train_transcript = transcript_file(self.path, "path")
            test_transcript = None if self.test_path is None else transcript_file(self.test_path, "test_path")
        train = read_transcript(train_transcript, self.max_phonemes)
        test = None if test_transcript is None else read_transcript(test_transcript, self.max_phonemes)
        self.tokenizer = PhonemeTokenizer.build(train[1])
        encoded = [
            [self.tokenizer.encode(text) for text in texts] for texts in (train[1], [] if test is None else test[1])
        ]
        self.strings = sorted({tuple(ids) for ids in encoded[0] + encoded[1]})
        self._class_names = [self.tokenizer.decode(ids) for ids in self.strings]
        train_source, train_ids = self._source(train[0], encoded[0], "path")
        test_source, test_ids = (None, []) if test is None else self._source(test[0], encoded[1], "test_path")
        self._phonemes = (train_ids, test_ids)
        return train_source, test_source

    def _source(self, files: list[Path], ids: list[list[int]], field: str) -> tuple[SpokenWordSource, list[list[int]]]:
        """Check every file (in parallel; a bad one raises or is skipped, see ``on_bad_file``); the source of the
        good ones and their phoneme ids."""
        reader = self.reader

        def read(file: Path) -> np.ndarray | None:
            clip = reader(file)
            return clip if self.cache else None

        kept = list(check_files(files, read, self.on_bad_file, field, workers=CHECK_WORKERS))
        number = {string: k for k, string in enumerate(self.strings)}
        labels = torch.tensor([number[tuple(ids[position])] for position, _ in kept], dtype=torch.long)
        source = SpokenWordSource([files[position] for position, _ in kept], labels, reader, self.cache)
        for index, (_, clip) in enumerate(kept):
            if clip is not None:
                source.remember(index, clip)
        return source, [ids[position] for position, _ in kept]

    # ----------------------------------------------------------------- what the model sees

    @property
    def input_spec(self) -> InputSpec:
        """The audio datamodule's spec (mono clips, their length and sample rate; one class per phoneme string) and
        the phoneme vocabulary's size (``vocab_size``, for the phoneme tower); indexes the data."""
        spec = super().input_spec
        assert self.tokenizer is not None  # built while indexing
        return dataclasses.replace(spec, vocab_size=self.tokenizer.vocab_size)

    def train_transform(self) -> Transform:
        return WordTransform(super().train_transform(), training=True)

    def eval_transform(self) -> Transform:
        return WordTransform(super().eval_transform(), training=False)

    def view_transform(self) -> Transform:
        return WordTransform(super().view_transform(), training=True)

    @property
    def distances(self) -> np.ndarray:
        """Edit distances between the phoneme strings (string ids, :attr:`strings`), ``uint16``, computed once."""
        if self._distances is None:
            self._indexed_sources()
            self._distances = edit_distances(self.strings, self.strings).astype(np.uint16)
        return self._distances

    def train_sampler(self, dataset: Dataset, num_replicas: int, rank: int) -> EpochSeededSampler:
        """Shuffled batches, or with ``batching="nearest"`` batches of near phoneme strings."""
        if self.batching == "random":
            return super().train_sampler(dataset, num_replicas, rank)
        words = self.train_source.labels[self.indices("train")].numpy()
        return NearestWordSampler(dataset, words, self.distances, self.batch_size, num_replicas, rank, self.seed)

    def batcher(self, split: str, training: bool) -> WordBatcher:
        """The collate function of ``split``'s loader (hard negatives in training when switched on)."""
        assert self.tokenizer is not None  # built while indexing
        phonemes = self._phonemes[1] if split == "test" and not self.test_fraction else self._phonemes[0]
        return WordBatcher(
            phonemes, self.tokenizer.vocab_size, training and self.hard_negatives, self.negative_fraction
        )

    def train_dataloader(self) -> DataLoader:
        loader = super().train_dataloader()
        loader.collate_fn = self.batcher("train", training=True)
        return loader

    def eval_dataloader(self, split: str) -> DataLoader:
        loader = super().eval_dataloader(split)
        loader.collate_fn = self.batcher(split, training=False)
        return loader
