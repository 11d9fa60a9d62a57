"""Shared fixtures: small CoNLL files written here, and a tiny random BERT built offline."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import ner_utils as nu  # noqa: E402

REAL_DATA = Path(os.environ.get("CONLL_DIR") or ROOT.parent / "shared" / "conll_2003_ner")

# Made-up sentences in the original 4-column IOB1 format, two documents.
IOB1_TEXT = """-DOCSTART- -X- -X- O

Zorblat NNP I-NP I-ORG
rejects VBZ I-VP O
Quennish JJ I-NP I-MISC
call NN I-NP O
. . O O

Mira NNP I-NP I-PER
Tolvane NNP I-NP I-PER
Ostrava NNP I-NP I-LOC
Brenn NNP I-NP B-LOC
. . O O

-DOCSTART- -X- -X- O

Kell NNP I-NP I-PER
met VBD I-VP O
Dara NNP I-NP B-PER
in IN I-PP O
Velm NNP I-NP I-LOC
City NNP I-NP I-LOC
. . O O
"""

IOB2_TAGS = [
    ["B-ORG", "O", "B-MISC", "O", "O"],
    ["B-PER", "I-PER", "B-LOC", "B-LOC", "O"],
    ["B-PER", "O", "B-PER", "O", "B-LOC", "I-LOC", "O"],
]

VOCAB_WORDS = ["the", "in", "met", "city", "rejects", "call", "germany", "eu", "john", "berlin", "angela",
               "merkel", "lives", "works", "for", "visited", "and", "of", "a", "to"]


@pytest.fixture(autouse=True)
def _fresh_fallback_notice():
    """load_model says its fallback line once per process; each test starts as a fresh process would."""
    nu._say_once.cache_clear()
    yield


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def to_two_columns(text: str) -> str:
    return "\n".join(" ".join([c[0], c[-1]]) if (c := line.split()) else "" for line in text.split("\n"))


@pytest.fixture
def iob1_file(tmp_path: Path) -> Path:
    return write(tmp_path / "eng.iob1", IOB1_TEXT)


def make_split_folder(folder: Path, text: str = IOB1_TEXT) -> Path:
    for name in nu.SPLIT_FILES.values():
        write(folder / name, text)
    return folder


def tiny_vocab() -> list[str]:
    chars = "abcdefghijklmnopqrstuvwxyz0123456789"
    return (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list(chars + ".,-'()!?:;")
            + ["##" + c for c in chars] + VOCAB_WORDS)


def build_tiny_model(folder: Path, max_positions: int = 64, seed: int = 0) -> Path:
    """Save a randomly initialised 2-layer BERT and its WordPiece tokenizer to ``folder``."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForTokenClassification

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(tiny_vocab()) + "\n")
    (folder / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "BertTokenizer", "do_lower_case": True, "model_max_length": max_positions}))
    tokenizer = AutoTokenizer.from_pretrained(str(folder), use_fast=True)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(tiny_vocab()), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=max_positions, num_labels=len(nu.LABELS),
                        id2label=dict(enumerate(nu.LABELS)), label2id={l: i for i, l in enumerate(nu.LABELS)})
    BertForTokenClassification(config).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny(tiny_model_dir: Path):
    """(model, tokenizer) of the tiny BERT, max 64 pieces."""
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    return (AutoModelForTokenClassification.from_pretrained(str(tiny_model_dir)),
            AutoTokenizer.from_pretrained(str(tiny_model_dir)))


def require_real_data() -> None:
    """Skip with a reason where the data is absent; fail instead under NER_REQUIRE_DATA=1 (CI)."""
    if (REAL_DATA / "eng.testb").exists():
        return
    reason = f"CoNLL-2003 data not found at {REAL_DATA} (set CONLL_DIR to the folder holding eng.train)"
    if os.environ.get("NER_REQUIRE_DATA") == "1":
        pytest.fail(reason + "; NER_REQUIRE_DATA=1 forbids skipping")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def real_splits():
    require_real_data()
    return nu.load_conll2003(REAL_DATA)


@pytest.fixture(scope="session")
def real_raw():
    require_real_data()
    return {split: nu.read_conll(REAL_DATA / name) for split, name in nu.SPLIT_FILES.items()}


def synthetic_splits(n_train: int = 160, n_eval: int = 24, seed: int = 0) -> dict[str, list[nu.Sentence]]:
    """Made-up sentences with learnable entities (john=PER, berlin/germany=LOC, eu=ORG), IOB2, 4 docs."""
    import random

    rng = random.Random(seed)
    patterns = [
        (["john", "lives", "in", "berlin"], ["B-PER", "O", "O", "B-LOC"]),
        (["the", "eu", "visited", "germany"], ["O", "B-ORG", "O", "B-LOC"]),
        (["angela", "merkel", "works", "for", "the", "eu"], ["B-PER", "I-PER", "O", "O", "O", "B-ORG"]),
        (["john", "met", "angela", "merkel", "in", "the", "city"], ["B-PER", "O", "B-PER", "I-PER", "O", "O", "O"]),
        (["berlin", "and", "germany"], ["B-LOC", "O", "B-LOC"]),
    ]

    def make(n: int) -> list[nu.Sentence]:
        out = []
        for i in range(n):
            words, tags = rng.choice(patterns)
            out.append(nu.Sentence(list(words), list(tags), doc=i * 4 // n))
        return out

    return {"train": make(n_train), "testa": make(n_eval), "testb": make(n_eval)}


@pytest.fixture(autouse=True, scope="session")
def _empty_model_cache(tmp_path_factory):
    """Reassembled offline checkpoints (all-mpnet-base-v2) live in $XDG_CACHE_HOME/ner_utils: the tests see an empty
    one, so the offline fallback is the embedded all-MiniLM-L6-v2 whatever this machine has assembled."""
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("model-cache"))


def build_tiny_mpnet(folder: Path, max_positions: int = 64, seed: int = 0) -> Path:
    """A randomly initialised 2-layer MPNet (as all-mpnet-base-v2: <s> </s> <pad>=1, no token_type_ids, positions
    offset by 2) with an uncased WordPiece tokenizer, saved as a bare encoder (MPNetForMaskedLM, no NER head)."""
    import torch
    from transformers import AutoTokenizer, MPNetConfig, MPNetForMaskedLM

    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["<s>", "<pad>", "</s>", "<unk>"] + [t for t in tiny_vocab() if t not in ("[PAD]", "[CLS]", "[SEP]", "[MASK]")]
    (folder / "vocab.txt").write_text("\n".join(vocab + ["<mask>"]) + "\n")
    (folder / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "MPNetTokenizer", "do_lower_case": True, "model_max_length": max_positions,
         "bos_token": "<s>", "eos_token": "</s>", "sep_token": "</s>", "cls_token": "<s>", "unk_token": "[UNK]",
         "pad_token": "<pad>", "mask_token": "<mask>"}))
    tokenizer = AutoTokenizer.from_pretrained(str(folder), use_fast=True)
    torch.manual_seed(seed)
    config = MPNetConfig(vocab_size=len(vocab) + 1, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=max_positions + 2, pad_token_id=1,
                         bos_token_id=0, eos_token_id=2)
    MPNetForMaskedLM(config).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


def build_tiny_roberta(folder: Path, max_positions: int = 64, seed: int = 0) -> Path:
    """A randomly initialised 2-layer RoBERTa with a byte-level BPE tokenizer trained on a few words (bare encoder)."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import AutoTokenizer, RobertaConfig, RobertaModel

    folder.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    corpus = [" ".join(VOCAB_WORDS), " ".join(w.capitalize() for w in VOCAB_WORDS), "a b c 1 2 . , -"]
    bpe.train_from_iterator(corpus * 20, vocab_size=400, min_frequency=1,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    bpe.save_model(str(folder))
    (folder / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "RobertaTokenizer", "model_max_length": max_positions}))
    tokenizer = AutoTokenizer.from_pretrained(str(folder), use_fast=True)
    torch.manual_seed(seed)
    config = RobertaConfig(vocab_size=bpe.get_vocab_size(), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=64, max_position_embeddings=max_positions + 2, pad_token_id=1,
                           type_vocab_size=1)
    RobertaModel(config).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


def build_bare_encoder(folder: Path, tiny_model_dir: Path) -> Path:
    """The tiny BERT's encoder saved alone (BertModel: no token-classification head), with its tokenizer files."""
    from transformers import AutoModel

    AutoModel.from_pretrained(str(tiny_model_dir)).save_pretrained(str(folder))
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        if (tiny_model_dir / name).exists():
            (folder / name).write_bytes((tiny_model_dir / name).read_bytes())
    return folder
