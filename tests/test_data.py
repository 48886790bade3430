from pathlib import Path

import pytest
import torch

from resonance_lib.data import (
    CharTokenizer,
    CorpusNotFoundError,
    KeyValueOverwrite,
    MNISTPatches,
    SequenceReconstruction,
    TokenData,
    WordTokenizer,
    load_corpus,
    load_tokenizer,
)


def test_unknown_corpus_names_the_allowed_ones():
    with pytest.raises(ValueError, match=r"corpus='shakespeare'.*tinyshakespeare"):
        load_corpus("shakespeare")


def test_missing_file_offline_lists_every_place_tried(isolated, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    with pytest.raises(CorpusNotFoundError) as info:
        load_corpus("tinyshakespeare", data_dirs=[a, b], download=False)
    message = str(info.value)
    for place in (a, b, isolated):
        assert str(place / "tinyshakespeare" / "input.txt") in message
    assert "RESONANCE_DATA_DIR" in message and "download=False" in message


def test_failed_download_is_reported_with_the_url(isolated, tmp_path):
    missing = (tmp_path / "nowhere.txt").as_uri()
    with pytest.raises(CorpusNotFoundError, match="download failed") as info:
        load_corpus("tinyshakespeare", data_dirs=[], url=missing)
    assert missing in str(info.value)


SHARED_INPUT = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare" / "input.txt"


@pytest.mark.skipif(not SHARED_INPUT.is_file(), reason="needs ../shared/data/tinyshakespeare (the verified file)")
def test_download_path_on_a_file_url(isolated, tmp_path):
    source = tmp_path / "served" / "input.txt"  # a download is checked against the real file's sha256
    source.parent.mkdir()
    text = SHARED_INPUT.read_text(encoding="utf-8")
    source.write_text(text, encoding="utf-8")
    corpus = load_corpus("tinyshakespeare", data_dirs=[], url=source.as_uri())
    assert (isolated / "tinyshakespeare" / "input.txt").read_text(encoding="utf-8") == text  # cached
    n_train, n_val = int(0.85 * len(text)), int(0.9 * len(text))
    assert corpus.val == text[n_val:]  # nanoGPT's validation split: the last 10%
    assert corpus.train == text[:n_train] and corpus.test == text[n_train:n_val]  # 5% held out before it
    again = load_corpus("tinyshakespeare", data_dirs=[], download=False)  # now found in the cache
    assert again.train == corpus.train


def test_test_fraction_zero_is_nanogpts_own_split_and_a_corpus_with_a_test_file_refuses_it(tmp_path):
    (tmp_path / "tinyshakespeare").mkdir()
    text = "".join(chr(97 + i % 26) for i in range(1000))
    (tmp_path / "tinyshakespeare" / "input.txt").write_text(text)
    nanogpt = load_corpus("tinyshakespeare", data_dirs=[tmp_path], download=False, test_fraction=0.0)
    assert nanogpt.train == text[:900] and nanogpt.val == text[900:] and nanogpt.test == ""
    held_out = load_corpus("tinyshakespeare", data_dirs=[tmp_path], download=False)
    assert held_out.train == text[:850] and held_out.test == text[850:900] and held_out.val == nanogpt.val
    with pytest.raises(ValueError, match="test_fraction=0.7 must lie in"):
        load_corpus("tinyshakespeare", data_dirs=[tmp_path], download=False, test_fraction=0.7)
    for split in ("train.txt", "validation.txt", "test.txt"):
        (tmp_path / "wikitext-2").mkdir(exist_ok=True)
        (tmp_path / "wikitext-2" / split).write_text(text)
    with pytest.raises(ValueError, match="test_fraction=0.0: corpus 'wikitext-2' has its own test split"):
        load_corpus("wikitext-2", data_dirs=[tmp_path], download=False, test_fraction=0.0)


def test_env_directories_searched_in_order(isolated, tmp_path, monkeypatch):
    for name, text in (("first", "one"), ("second", "two")):
        (tmp_path / name / "tinyshakespeare").mkdir(parents=True)
        (tmp_path / name / "tinyshakespeare" / "input.txt").write_text(text * 100)
    monkeypatch.setenv("RESONANCE_DATA_DIR", f"{tmp_path / 'missing'}:{tmp_path / 'second'}:{tmp_path / 'first'}")
    assert load_corpus("tinyshakespeare", download=False).train.startswith("two")


def test_shared_tinyshakespeare_is_found():
    corpus = load_corpus("tinyshakespeare", download=False)
    assert corpus.train.startswith("First Citizen")
    assert len(corpus.train) + len(corpus.test) + len(corpus.val) == 1_115_394


def test_char_tokenizer_round_trip(tmp_path, tiny_text):
    tok = CharTokenizer.fit(tiny_text)
    assert tok.decode(tok.encode(tiny_text)) == tiny_text
    tok.save(tmp_path / "tok.json")
    again = load_tokenizer(tmp_path / "tok.json")
    assert isinstance(again, CharTokenizer) and again.encode(tiny_text) == tok.encode(tiny_text)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok.encode("Z")


def test_word_tokenizer_round_trip_and_unk(tmp_path, tiny_text):
    tok = WordTokenizer.fit(tiny_text, max_vocab=8)
    assert tok.vocab_size == 8 and tok.itos[0] == "<unk>"
    ids = tok.encode(tiny_text)
    assert 0 in ids  # rare words map to <unk>
    assert tok.encode(tok.decode(ids)) == ids
    full = WordTokenizer.fit(tiny_text)
    assert full.decode(full.encode("Speak, speak.\n")) == "Speak , speak .\n"
    full.save(tmp_path / "w.json")
    assert load_tokenizer(tmp_path / "w.json").itos == full.itos
    with pytest.raises(ValueError, match="max_vocab"):
        WordTokenizer.fit(tiny_text, max_vocab=1)


def test_batches_are_shifted_windows_and_seeded(tiny_text):
    tok = CharTokenizer.fit(tiny_text)
    ids = torch.tensor(tok.encode(tiny_text))
    td = TokenData(ids, ids, tok)
    x, y = td.get_batch("train", 4, 16, generator=torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (4, 16)
    assert torch.equal(x[:, 1:], y[:, :-1])
    x2, _ = td.get_batch("train", 4, 16, generator=torch.Generator().manual_seed(0))
    assert torch.equal(x, x2)
    with pytest.raises(ValueError, match="split='dev'; allowed: 'train', 'val', 'test'"):
        td.get_batch("dev", 4, 16)
    with pytest.raises(ValueError, match="needs more than 0 test tokens"):  # made without a test stream
        td.get_batch("test", 4, 16)
    with pytest.raises(ValueError, match="block_size"):
        td.get_batch("train", 4, len(ids))


def test_sequence_reconstruction_modes():
    ident = SequenceReconstruction(vocab_size=16, seq_len=8, mode="identity", seed=3)
    x, y = ident.get_batch("train", 5)
    assert torch.equal(x, y) and x.max() < 16
    copy = SequenceReconstruction(vocab_size=16, seq_len=8, mode="copy", seed=3)
    x, y = copy.get_batch("train", 5)
    assert x.shape == (5, 16) and (x[:, 8] == 15).all()  # the separator is the last id
    assert (y[:, :8] == -100).all() and torch.equal(y[:, 8:], x[:, :8])  # copy the prefix back
    same = SequenceReconstruction(vocab_size=16, seq_len=8, mode="copy", seed=3).get_batch("train", 5)
    assert torch.equal(same[0], x)
    with pytest.raises(ValueError, match="mode='reverse'"):
        SequenceReconstruction(mode="reverse")
    with pytest.raises(ValueError, match="block_size=8"):
        copy.get_batch("train", 2, block_size=8)


def test_lookup_mode_targets_a_fixed_code_of_the_last_two_tokens():
    task = SequenceReconstruction(vocab_size=8, seq_len=6, mode="lookup", seed=3)
    x, y = task.get_batch("train", 50)
    assert (y[:, 0] == -100).all()
    assert torch.equal(y[:, 1:], task.code[x[:, :-1], x[:, 1:]])
    xv, yv = task.get_batch("val", 50)  # validation reads the same code on other sequences
    assert not torch.equal(xv, x) and torch.equal(yv[:, 1:], task.code[xv[:, :-1], xv[:, 1:]])
    assert torch.equal(SequenceReconstruction(vocab_size=8, seq_len=6, mode="lookup", seed=3).code, task.code)
    assert not torch.equal(SequenceReconstruction(vocab_size=8, seq_len=6, mode="lookup", seed=4).code, task.code)
    assert len(set(task.code.flatten().tolist())) > 4  # a code, not a constant
    with pytest.raises(ValueError, match="seq_len=1 must be >= 2 in mode='lookup'"):
        SequenceReconstruction(vocab_size=8, seq_len=1, mode="lookup")


def test_key_value_overwrite_answers_the_latest_write():
    task = KeyValueOverwrite(n_keys=4, n_values=5, n_pairs=10, seed=0)
    x, y = task.get_batch("train", 64)
    assert x.shape == (64, 22) and task.block_size == 22 and task.vocab_size == 10
    assert (y[:, :-1] == -100).all() and (x[:, -2] == task.query_token).all()
    for row_x, row_y in zip(x, y, strict=True):
        pairs = row_x[:-2].view(-1, 2)
        writes = [v.item() for k, v in pairs if k == row_x[-1]]
        assert writes and row_y[-1].item() == writes[-1]  # the latest value, not the first
    assert 0.5 < task.overwritten_fraction() < 1.0
    with pytest.raises(ValueError, match="n_pairs=0"):
        KeyValueOverwrite(n_pairs=0)


def test_a_single_file_corpus_keeps_nanogpts_validation_split_and_holds_out_a_test_split(tmp_path):
    from resonance_lib.data import load_corpus, prepare

    folder = tmp_path / "tinyshakespeare"
    folder.mkdir()
    text = "".join(chr(ord("a") + i % 26) for i in range(10_000))
    (folder / "input.txt").write_text(text)
    corpus = load_corpus("tinyshakespeare", [tmp_path], download=False)
    assert corpus.val == text[9_000:]  # nanoGPT's last 10%, unchanged
    assert corpus.test == text[8_500:9_000] and corpus.train == text[:8_500]
    data = prepare("tinyshakespeare", "char", data_dirs=[tmp_path], download=False)
    assert len(data.split("test")) == 500 and len(data.split("val")) == 1_000
    x, y = data.get_batch("test", 2, 8)
    assert x.shape == (2, 8)
    import pytest

    with pytest.raises(ValueError, match="split='dev'; allowed: 'train', 'val', 'test'"):
        data.split("dev")


def _mnist_like(n=20, seed=0):
    """Digit-like images: a bright blob inside the 4-pixel margin MNIST digits keep, on a black background."""
    g = torch.Generator().manual_seed(seed)
    images = torch.zeros(n, 28, 28, dtype=torch.uint8)
    images[:, 8:20, 10:18] = torch.randint(1, 256, (n, 12, 8), generator=g, dtype=torch.uint8)
    return images.numpy(), torch.arange(n).remainder(10).numpy()


def test_mnist_shift_translates_training_images_only_and_keeps_their_content():
    images, labels = _mnist_like()
    plain = MNISTPatches(images, labels, images, labels, note="t")
    shifted = MNISTPatches(images, labels, images, labels, note="t", shift=2)
    x0, y0 = plain.get_batch("train", 16, generator=torch.Generator().manual_seed(3))
    x2, y2 = shifted.get_batch("train", 16, generator=torch.Generator().manual_seed(3))
    assert torch.equal(y0, y2)  # the same examples; only their position moved
    assert not torch.equal(x0, x2)
    background = float(plain.images["train"].min())
    # a translation inside the margin moves pixels, it does not add or lose any
    assert torch.allclose((x0 - background).sum(dim=(1, 2)), (x2 - background).sum(dim=(1, 2)), rtol=1e-5)
    v0, _ = plain.get_batch("val", 16, generator=torch.Generator().manual_seed(3))
    v2, _ = shifted.get_batch("val", 16, generator=torch.Generator().manual_seed(3))
    assert torch.equal(v0, v2)  # evaluation batches are never shifted
    assert torch.equal(shifted.examples("val")[0], plain.examples("val")[0])


def test_mnist_shift_refuses_bad_values():
    images, labels = _mnist_like()
    with pytest.raises(ValueError, match=r"shift=-1 must be an integer in \[0, 27\]"):
        MNISTPatches(images, labels, images, labels, note="t", shift=-1)
