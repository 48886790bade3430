"""Corpora, tokenizers, batch sampling and the seeds' synthetic toy task.

Corpora are found by name. Look-up order, first hit wins:

1. each directory in ``RESONANCE_DATA_DIR`` (colon-separated), as ``<dir>/<corpus>/<file>``;
2. the download cache (``data/`` in a source checkout, else ``~/.cache/resonance_lib``);
3. a download into the cache: the canonical raw URL for tinyshakespeare, the Hugging Face
   ``datasets`` copy of ``Salesforce/wikitext`` for WikiText.

Offline and not found, :class:`CorpusNotFoundError` names every place tried and how to supply the file.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import struct
import tempfile
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .checks import check_float, check_int

PACKAGE_ROOT = Path(__file__).resolve().parent.parent


def default_cache_dir() -> Path:
    """``data/`` beside the package in a source checkout, else ``~/.cache/resonance_lib``."""
    if (PACKAGE_ROOT / "pyproject.toml").exists():
        return PACKAGE_ROOT / "data"
    return Path.home() / ".cache" / "resonance_lib"


@dataclass(frozen=True)
class CorpusSpec:
    """Where a corpus lives: one file per split under ``<dir>/<name>/``."""

    name: str
    files: dict[str, str]  # split -> file name; a single "all" file is split 85/5/10 (see load_corpus)
    url: str | None = None  # canonical download URL for an "all" file
    hf_config: str | None = None  # datasets.load_dataset("Salesforce/wikitext", hf_config)
    sizes: dict[str, int] | None = None  # split -> bytes of the downloaded file, checked after download
    sha256: dict[str, str] | None = None  # split -> sha256 hex digest, checked after download


CORPORA: dict[str, CorpusSpec] = {
    "tinyshakespeare": CorpusSpec(
        "tinyshakespeare",
        {"all": "input.txt"},
        url="https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
        sizes={"all": 1_115_394},
        sha256={"all": "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"},
    ),
    "wikitext-2": CorpusSpec(
        "wikitext-2", {"train": "train.txt", "val": "validation.txt", "test": "test.txt"},
        hf_config="wikitext-2-raw-v1"
    ),
    "wikitext-103": CorpusSpec(
        "wikitext-103", {"train": "train.txt", "val": "validation.txt", "test": "test.txt"},
        hf_config="wikitext-103-raw-v1"
    ),
}


class CorpusNotFoundError(FileNotFoundError):
    """A corpus is in none of the places looked at and could not be downloaded."""


@dataclass
class Corpus:
    name: str
    train: str
    val: str
    test: str = ""  # held out: read once, for the reported number after every choice was made on val


def search_dirs(data_dirs: list[str | Path] | None = None) -> list[Path]:
    """Directories searched, in order: ``data_dirs`` (or ``RESONANCE_DATA_DIR``), then the cache."""
    if data_dirs is None:
        data_dirs = [d for d in os.environ.get("RESONANCE_DATA_DIR", "").split(":") if d]
    return [Path(d).expanduser() for d in data_dirs] + [default_cache_dir()]


def _find(spec: CorpusSpec, dirs: list[Path]) -> Path | None:
    for d in dirs:
        if all((d / spec.name / f).is_file() for f in spec.files.values()):
            return d / spec.name
    return None


class DownloadError(OSError):
    """A download that failed, or whose bytes are not the file expected (size or sha256)."""


def _made_dirs(path: Path) -> list[Path]:
    """The directories ``path.mkdir(parents=True)`` would create, deepest first."""
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    return missing


def _remove_if_empty(dirs: list[Path]) -> None:
    for d in dirs:  # deepest first
        if d.is_dir() and not any(d.iterdir()):
            d.rmdir()


def download_file(url: str, dest: Path, size: int | None = None, sha256: str | None = None) -> Path:
    """Fetch ``url`` (http(s):// or file://) to ``dest`` atomically (temp file, then rename), after checking
    the byte count and sha256 when given. A failed or refused download leaves nothing behind: no file, no
    temp file, no folder it created."""
    created = _made_dirs(dest.parent)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:
        digest, count = hashlib.sha256(), 0
        with urllib.request.urlopen(url, timeout=60) as response, tempfile.NamedTemporaryFile(
            dir=dest.parent, delete=False
        ) as out:
            tmp = Path(out.name)
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                count += len(chunk)
                out.write(chunk)
        if size is not None and count != size:
            raise DownloadError(f"{url} gave {count:,} bytes, expected {size:,} (sha256 {digest.hexdigest()}); "
                                "not cached: an error page or a different file")
        if sha256 is not None and digest.hexdigest() != sha256:
            raise DownloadError(f"{url} has sha256 {digest.hexdigest()}, expected {sha256}; not cached")
        os.replace(tmp, dest)
        return dest
    except BaseException:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        _remove_if_empty(created)
        raise


def _download_wikitext(spec: CorpusSpec, dest_dir: Path) -> None:
    from datasets import load_dataset  # heavy import, only when needed

    splits = {"train": "train", "val": "validation", "test": "test"}
    ds = load_dataset("Salesforce/wikitext", spec.hf_config)  # datasets checks what the hub sends
    texts = {split: "".join(ds[hf_split]["text"]) for split, hf_split in splits.items()}
    empty = [split for split, text in texts.items() if not text.strip()]
    if empty:
        raise DownloadError(f"Salesforce/wikitext {spec.hf_config} gave empty splits {empty}; not cached")
    created = _made_dirs(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    try:
        for split, text in texts.items():  # each file atomically: a half-written split is never found
            with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=dest_dir, delete=False) as out:
                out.write(text)
            os.replace(out.name, dest_dir / spec.files[split])
    except BaseException:
        _remove_if_empty(created)
        raise


def corpus_dir(name: str, data_dirs: list[str | Path] | None = None, download: bool = True,
               url: str | None = None) -> Path:
    """The directory holding corpus ``name``'s files, downloading it into the cache if allowed."""
    if name not in CORPORA:
        raise ValueError(f"corpus={name!r} is not known; allowed: {sorted(CORPORA)}")
    spec = CORPORA[name]
    dirs = search_dirs(data_dirs)
    found = _find(spec, dirs)
    if found is not None:
        return found
    tried = [str(d / spec.name / f) for d in dirs for f in spec.files.values()]
    dest = default_cache_dir() / spec.name
    error = "downloading was switched off (download=False)"
    if download:
        try:
            if spec.hf_config is not None:
                _download_wikitext(spec, dest)
                tried.append(f'datasets.load_dataset("Salesforce/wikitext", "{spec.hf_config}")')
            else:
                tried.append(url or spec.url)
                download_file(url or spec.url, dest / spec.files["all"], size=(spec.sizes or {}).get("all"),
                              sha256=(spec.sha256 or {}).get("all"))
            return dest
        except Exception as exc:  # noqa: BLE001 - reported below with every place tried
            error = f"download failed: {type(exc).__name__}: {exc}"
    how = (f"fetch {spec.url} " if spec.url else f'run datasets.load_dataset("Salesforce/wikitext", '
           f'"{spec.hf_config}") and write each split as text ')
    raise CorpusNotFoundError(
        f"corpus {name!r} not found ({error}). Tried:\n  " + "\n  ".join(tried)
        + f"\nTo supply it offline, {how}into <dir>/{spec.name}/ as {list(spec.files.values())} and set "
        "RESONANCE_DATA_DIR=<dir> (several directories may be joined with ':')."
    )


TEST_FRACTION = 0.05  # of a single-file corpus, held out just before nanoGPT's validation 10%


def load_corpus(name: str, data_dirs: list[str | Path] | None = None, download: bool = True,
                url: str | None = None, test_fraction: float | None = None) -> Corpus:
    """Train, validation and test text of corpus ``name``. A single file is split as nanoGPT splits it — the
    last 10% is validation, so validation numbers stay comparable with nanoGPT's — and the ``test_fraction``
    just before it (None: ``TEST_FRACTION`` = 5%) is held out as the test split: train = the first
    90% − test_fraction, test = the next test_fraction, val = the last 10%. ``test_fraction=0`` is nanoGPT's own
    90/10 split with no test text (for reproducing its numbers). A corpus with its own test file (WikiText)
    takes no ``test_fraction``."""
    spec = CORPORA.get(name)
    directory = corpus_dir(name, data_dirs, download=download, url=url)
    if "all" in spec.files:
        fraction = TEST_FRACTION if test_fraction is None else check_float("test_fraction", test_fraction, 0.0, 0.5)
        text = read_corpus_file(directory / spec.files["all"])
        n_train, n_val = int((0.9 - fraction) * len(text)), int(0.9 * len(text))
        return Corpus(name, text[:n_train], text[n_val:], text[n_train:n_val])
    if test_fraction is not None:
        raise ValueError(f"test_fraction={test_fraction!r}: corpus {name!r} has its own test split "
                         f"({spec.files['test']}); test_fraction applies to single-file corpora only")
    read = {split: read_corpus_file(directory / f) for split, f in spec.files.items()}
    return Corpus(name, read["train"], read["val"], read.get("test", ""))


def read_corpus_file(path: Path) -> str:
    """A corpus file's text; an empty or non-UTF-8 file is a ``ValueError`` naming the path."""
    raw = Path(path).read_bytes()
    if not raw.strip():
        raise ValueError(f"corpus file {path} is empty; replace it with the corpus text (or delete it so the "
                         "corpus is looked for elsewhere)")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"corpus file {path} is not UTF-8 text ({exc}); is it the right file?") from exc


# ----------------------------------------------------------------------------- tokenizers


class CharTokenizer:
    """One id per distinct character of the training text (nanoGPT's shakespeare_char)."""

    kind = "char"

    def __init__(self, chars: list[str]):
        self.itos = list(chars)
        self.stoi = {c: i for i, c in enumerate(self.itos)}

    @classmethod
    def fit(cls, text: str) -> CharTokenizer:
        return cls(sorted(set(text)))

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def encode(self, text: str) -> list[int]:
        missing = sorted(set(text) - self.stoi.keys())
        if missing:
            raise ValueError(f"text has characters outside the vocabulary: {missing[:10]}")
        return [self.stoi[c] for c in text]

    def decode(self, ids) -> str:
        return "".join(self.itos[int(i)] for i in ids)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps({"kind": self.kind, "itos": self.itos}), encoding="utf-8")


WORD_PATTERN = re.compile(r"<unk>|\w+|[^\w\s]|\n")


class WordTokenizer:
    """Words, single punctuation marks and newlines; the ``max_vocab`` most frequent, rest ``<unk>``.

    ``decode`` joins tokens with single spaces, so ``encode(decode(ids)) == ids`` holds for any ids,
    while ``decode(encode(text))`` normalises spacing.
    """

    kind = "word"
    unk = "<unk>"

    def __init__(self, itos: list[str]):
        if not itos or itos[0] != self.unk:
            raise ValueError(f"WordTokenizer vocabulary must start with {self.unk!r}")
        self.itos = list(itos)
        self.stoi = {w: i for i, w in enumerate(self.itos)}

    @classmethod
    def fit(cls, text: str, max_vocab: int = 10_000) -> WordTokenizer:
        if max_vocab < 2:
            raise ValueError(f"max_vocab={max_vocab} must be at least 2 (<unk> and one word)")
        counts = Counter(WORD_PATTERN.findall(text))
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))  # ties broken alphabetically
        return cls([cls.unk] + [w for w, _ in ranked[: max_vocab - 1]])

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def tokenize(self, text: str) -> list[str]:
        return WORD_PATTERN.findall(text)

    def encode(self, text: str) -> list[int]:
        return [self.stoi.get(w, 0) for w in self.tokenize(text)]

    def decode(self, ids) -> str:
        return re.sub(r" ?\n ?", "\n", " ".join(self.itos[int(i)] for i in ids))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps({"kind": self.kind, "itos": self.itos}), encoding="utf-8")


def load_tokenizer(path: str | Path) -> CharTokenizer | WordTokenizer:
    state = json.loads(Path(path).read_text(encoding="utf-8"))
    kinds = {"char": CharTokenizer, "word": WordTokenizer}
    if state.get("kind") not in kinds:
        raise ValueError(f"tokenizer kind={state.get('kind')!r} in {path}; allowed: {sorted(kinds)}")
    return kinds[state["kind"]](state["itos"])


# ----------------------------------------------------------------------------- batches


def check_split(split: str, block_size: int | None = None, needed: int | None = None,
                splits: tuple[str, ...] = ("train", "val", "test")) -> None:
    """The checks every batch source makes: a split it has, and a block long enough for the task."""
    if split not in splits:
        raise ValueError(f"split={split!r}; allowed: {', '.join(repr(s) for s in splits)}")
    if block_size is not None and needed is not None and block_size < needed:
        raise ValueError(f"block_size={block_size} is shorter than this task's {needed}")


class TokenData:
    """Train/val/test token streams and random-window batch sampling (nanoGPT's ``get_batch``)."""

    def __init__(self, train: torch.Tensor, val: torch.Tensor, tokenizer, test: torch.Tensor | None = None):
        self.train, self.val, self.tokenizer = train, val, tokenizer
        self.test = test if test is not None else torch.zeros(0, dtype=torch.long)

    def split(self, split: str) -> torch.Tensor:
        """The whole token stream of ``split``."""
        check_split(split)
        return {"train": self.train, "val": self.val, "test": self.test}[split]

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size

    def get_batch(self, split: str, batch_size: int, block_size: int,
                  generator: torch.Generator | None = None, device: str | torch.device = "cpu"):
        """``x[b] = tokens[i_b : i_b+T]``, ``y[b] = tokens[i_b+1 : i_b+T+1]``, ``i_b`` uniform."""
        data = self.split(split)
        if len(data) <= block_size:
            raise ValueError(f"block_size={block_size} needs more than {len(data)} {split} tokens")
        ix = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
        offsets = torch.arange(block_size)
        x = data[ix[:, None] + offsets]
        y = data[ix[:, None] + offsets + 1]
        return x.to(device), y.to(device)


def prepare(corpus: str = "tinyshakespeare", tokenizer: str = "char", max_vocab: int = 10_000,
            data_dirs: list[str | Path] | None = None, download: bool = True,
            test_fraction: float | None = None) -> TokenData:
    """Load ``corpus`` (``test_fraction``: see ``load_corpus``), fit a tokenizer (chars: on all the text, as
    nanoGPT does; words: on the training split) and encode every split."""
    text = load_corpus(corpus, data_dirs, download=download, test_fraction=test_fraction)
    if tokenizer == "char":
        tok = CharTokenizer.fit(text.train + text.test + text.val)  # nanoGPT builds the vocabulary on all text
    elif tokenizer == "word":
        tok = WordTokenizer.fit(text.train, max_vocab=max_vocab)
    else:
        raise ValueError(f"tokenizer={tokenizer!r}; allowed: 'char', 'word'")
    as_tensor = lambda s: torch.tensor(tok.encode(s), dtype=torch.long)  # noqa: E731
    return TokenData(as_tensor(text.train), as_tensor(text.val), tok, as_tensor(text.test))


# ----------------------------------------------------------------------------- toy task


class SequenceReconstruction:
    """The seeds' toy task: reconstruct random token sequences, as a seeded batch source.

    ``mode="identity"`` is the seeds' form: target = input (a causal model only has to echo the current
    token). ``mode="copy"`` needs attention: the model reads ``s``, a separator, then must emit ``s``
    again; only the copied half is scored (other targets are ``-100``, ignored by the loss).
    ``mode="lookup"`` needs capacity: the target at position t is a fixed random code of the last two tokens,
    y_t = C[x_{t−1}, x_t], with C a V×V table drawn once from ``seed``; the model must store all V² entries
    (V² · log₂V bits), so a smaller or sparser model cannot reach zero loss (position 0 is not scored).
    Without a ``generator``, train and validation batches come from two streams seeded from ``seed``.
    """

    MODES = ("identity", "copy", "lookup")

    def __init__(self, vocab_size: int = 128, seq_len: int = 32, mode: str = "identity", seed: int = 0):
        if mode not in self.MODES:
            raise ValueError(f"mode={mode!r}; allowed: {list(self.MODES)}")
        if vocab_size < 2 or seq_len < 1:
            raise ValueError(f"vocab_size={vocab_size} must be >= 2 and seq_len={seq_len} >= 1")
        if mode == "lookup" and seq_len < 2:
            raise ValueError(f"seq_len={seq_len} must be >= 2 in mode='lookup' (a code reads two tokens)")
        self.mode, self.seq_len, self.seed = mode, seq_len, seed
        self.n_symbols = vocab_size - 1 if mode == "copy" else vocab_size  # copy reserves a separator
        self.vocab_size = vocab_size
        self.block_size = 2 * seq_len if mode == "copy" else seq_len
        self.code = (torch.randint(vocab_size, (vocab_size, vocab_size), generator=torch.Generator().manual_seed(
            seed + 3)) if mode == "lookup" else None)
        self._streams = {"train": torch.Generator().manual_seed(seed),
                         "val": torch.Generator().manual_seed(seed + 1),
                         "test": torch.Generator().manual_seed(seed + 2)}

    def get_batch(self, split: str, batch_size: int, block_size: int | None = None,
                  generator: torch.Generator | None = None, device: str | torch.device = "cpu"):
        check_split(split, block_size, self.block_size)
        generator = generator if generator is not None else self._streams[split]
        s = torch.randint(self.n_symbols, (batch_size, self.seq_len), generator=generator)
        if self.mode == "identity":
            return s.to(device), s.clone().to(device)
        if self.mode == "lookup":
            y = torch.full_like(s, -100)
            y[:, 1:] = self.code[s[:, :-1], s[:, 1:]]
            return s.to(device), y.to(device)
        sep = torch.full((batch_size, 1), self.vocab_size - 1)
        z = torch.cat([s, sep, s], dim=1)
        x, y = z[:, :-1], z[:, 1:].clone()
        y[:, : self.seq_len] = -100  # the random prefix and separator cannot be predicted
        return x.to(device), y.to(device)


class KeyValueOverwrite:
    """A task that needs forgetting: a stream of key→value writes in which keys recur (later writes
    overwrite earlier ones), then a query key; the answer is the *latest* value written for it.

    Tokens: keys ``0..n_keys-1``, values ``n_keys..n_keys+n_values-1``, then the query marker. A sequence
    is ``k₁ v₁ k₂ v₂ … k_n v_n ? q`` and only the last position is scored (target: the latest value of q);
    every other target is ``-100``. The query is a key that occurs in the stream; ``overwritten_fraction``
    says how often it was written more than once.
    """

    def __init__(self, n_keys: int = 8, n_values: int = 8, n_pairs: int = 16, seed: int = 0):
        for name, value in (("n_keys", n_keys), ("n_values", n_values), ("n_pairs", n_pairs)):
            if value < 1:
                raise ValueError(f"{name}={value} must be a positive integer")
        self.n_keys, self.n_values, self.n_pairs = n_keys, n_values, n_pairs
        self.query_token = n_keys + n_values
        self.vocab_size = n_keys + n_values + 1
        self.block_size = 2 * n_pairs + 2
        self._streams = {"train": torch.Generator().manual_seed(seed),
                         "val": torch.Generator().manual_seed(seed + 1),
                         "test": torch.Generator().manual_seed(seed + 2)}

    def sample(self, batch_size: int, generator: torch.Generator):
        """Keys (B, n), values (B, n), query (B,), answer token (B,), and whether q was overwritten (B,)."""
        keys = torch.randint(self.n_keys, (batch_size, self.n_pairs), generator=generator)
        values = torch.randint(self.n_values, (batch_size, self.n_pairs), generator=generator) + self.n_keys
        pick = torch.randint(self.n_pairs, (batch_size,), generator=generator)
        query = keys[torch.arange(batch_size), pick]
        hits = keys == query[:, None]
        last = (hits * torch.arange(1, self.n_pairs + 1)).argmax(dim=1)  # position of the latest write
        answer = values[torch.arange(batch_size), last]
        return keys, values, query, answer, hits.sum(1) > 1

    def get_batch(self, split: str, batch_size: int, block_size: int | None = None,
                  generator: torch.Generator | None = None, device: str | torch.device = "cpu"):
        check_split(split, block_size, self.block_size)
        keys, values, query, answer, _ = self.sample(batch_size, generator or self._streams[split])
        stream = torch.stack([keys, values], dim=2).reshape(batch_size, 2 * self.n_pairs)
        marker = torch.full((batch_size, 1), self.query_token)
        x = torch.cat([stream, marker, query[:, None]], dim=1)
        y = torch.full_like(x, -100)
        y[:, -1] = answer
        return x.to(device), y.to(device)

    def overwritten_fraction(self, n: int = 10_000, seed: int = 0) -> float:
        return self.sample(n, torch.Generator().manual_seed(seed))[4].float().mean().item()


# ----------------------------------------------------------------------------- MNIST


MNIST_FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
               "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzip-compressed) as a numpy array: big-endian dims after a 4-byte magic number."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


class MNISTPatches:
    """MNIST as a batch source for a patch transformer: x is (B, n_patches, patch²) floats, y the digit.

    ``note`` says which split this is: the standard 60k/10k, or — offline, with only the 10k test images
    at hand — a seeded 8,000/2,000 split *of the test set*, not comparable to published numbers.

    ``shift``: training batches are translated by a random (dx, dy) ∈ [−shift, shift]² pixels (the
    background fills the edge), drawn from the batch generator, so a seeded run sees the same images; a
    small training set (8k images) needs it to reach the accuracy of the usual 60k. Evaluation batches and
    ``examples`` are never shifted.
    """

    def __init__(self, train_images, train_labels, val_images, val_labels, note: str, patch: int = 4,
                 shift: int = 0):
        if 28 % patch:
            raise ValueError(f"patch={patch} must divide 28")
        check_int("shift", shift, low=0, high=27)
        self.patch, self.note, self.shift = patch, note, shift
        self.block_size = (28 // patch) ** 2
        self.patch_dim = patch * patch
        self.vocab_size = 10
        self.images = {"train": self._normalise(train_images), "val": self._normalise(val_images)}
        self.labels = {"train": torch.as_tensor(train_labels, dtype=torch.long),
                       "val": torch.as_tensor(val_labels, dtype=torch.long)}
        self.splits = {name: (self._patches(self.images[name]), self.labels[name]) for name in self.images}

    @staticmethod
    def _normalise(images) -> torch.Tensor:
        x = torch.as_tensor(np.asarray(images), dtype=torch.float32) / 255.0
        return (x - 0.1307) / 0.3081  # the usual MNIST normalisation

    def _patches(self, x: torch.Tensor) -> torch.Tensor:
        """(n, 28, 28) → (n, (28/p)², p²): row-major p×p patches, each flattened row-major."""
        n, p = x.shape[0], self.patch
        return x.view(n, 28 // p, p, 28 // p, p).permute(0, 1, 3, 2, 4).reshape(n, self.block_size, p * p)

    def _shifted(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """Each image translated by its own random (dx, dy) ∈ [−shift, shift]², background at the edges."""
        n, s = x.shape[0], self.shift
        padded = F.pad(x, (s, s, s, s), value=float(self.images["train"].min()))
        dx, dy = (torch.randint(0, 2 * s + 1, (n,), generator=generator) for _ in range(2))
        rows = (dy[:, None] + torch.arange(28))[:, :, None]  # (n, 28, 1)
        cols = (dx[:, None] + torch.arange(28))[:, None, :]  # (n, 1, 28)
        return padded[torch.arange(n)[:, None, None], rows, cols]

    def get_batch(self, split: str, batch_size: int, block_size: int | None = None,
                  generator: torch.Generator | None = None, device: str | torch.device = "cpu"):
        check_split(split, splits=tuple(self.splits))
        images, labels = self.splits[split]
        ix = torch.randint(len(labels), (batch_size,), generator=generator)
        if split == "train" and self.shift:
            return self._patches(self._shifted(self.images[split][ix], generator)).to(device), labels[ix].to(device)
        return images[ix].to(device), labels[ix].to(device)

    def examples(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Every example of ``split`` (unshifted patches, labels): what whole-split accuracy is measured on."""
        check_split(split, splits=tuple(self.splits))
        return self.splits[split]


def load_mnist(data_dirs: list[str | Path] | None = None, download: bool = True, seed: int = 0,
               patch: int = 4, shift: int = 0) -> MNISTPatches:
    """The standard split if ``mnist/`` holds all four IDX files; else the seeded test-set split if it
    holds the two ``t10k`` files; else ``datasets.load_dataset("ylecun/mnist")`` when ``download``."""
    dirs = search_dirs(data_dirs)
    for d in dirs:
        if all((d / "mnist" / f).is_file() for pair in MNIST_FILES.values() for f in pair):
            tr = [read_idx(d / "mnist" / f) for f in MNIST_FILES["train"]]
            te = [read_idx(d / "mnist" / f) for f in MNIST_FILES["test"]]
            return MNISTPatches(*tr, *te, note="MNIST, standard 60k train / 10k test split", patch=patch,
                                shift=shift)
    for d in dirs:
        if all((d / "mnist" / f).is_file() for f in MNIST_FILES["test"]):
            images, labels = (read_idx(d / "mnist" / f) for f in MNIST_FILES["test"])
            order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed)).numpy()
            tr, va = order[:8000], order[8000:]
            return MNISTPatches(images[tr], labels[tr], images[va], labels[va], patch=patch, shift=shift,
                                note="MNIST test set only (offline): seeded 8,000 train / 2,000 val split of the "
                                     "10k test images; not comparable to numbers on the standard 60k/10k split")
    tried = [str(d / "mnist") for d in dirs]
    if download:
        try:
            from datasets import load_dataset

            ds = load_dataset("ylecun/mnist")
            arrays = {s: (np.stack([np.asarray(im) for im in ds[s]["image"]]), np.asarray(ds[s]["label"]))
                      for s in ("train", "test")}
            return MNISTPatches(*arrays["train"], *arrays["test"], patch=patch, shift=shift,
                                note="MNIST, standard 60k train / 10k test split (datasets: ylecun/mnist)")
        except Exception as exc:  # noqa: BLE001 - reported below with every place tried
            tried.append(f'datasets.load_dataset("ylecun/mnist") failed: {type(exc).__name__}: {exc}')
    raise CorpusNotFoundError("MNIST not found. Tried:\n  " + "\n  ".join(tried) + "\nPut the IDX .gz files in "
                              "<dir>/mnist/ and set RESONANCE_DATA_DIR=<dir>.")
