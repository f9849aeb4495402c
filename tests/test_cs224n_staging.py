"""Staging for cs224n_pretraining: given files are graded from the grader's pristine copies."""
from autograder.engine import registry
from autograder.engine.intake.staging import stage
from support import ROOT

ASSIGNMENT = registry.load_assignment("cs224n_pretraining")
PRISTINE = (ROOT / "reference" / "cs224n_pretraining" / "attention.py").read_bytes()


def _stage(tmp_path, files: dict[str, bytes]):
    upload, scratch = tmp_path / "upload", tmp_path / "scratch"
    (upload / "src").mkdir(parents=True)
    scratch.mkdir()
    for name, data in files.items():
        (upload / name).write_bytes(data)
    return stage(upload, ASSIGNMENT, scratch)


def test_changed_attention_is_reported_and_replaced(tmp_path):
    edited = PRISTINE.replace(b"def forward(self, x_kv, x_q):", b"def forward(self, x_q, x_kv):")
    staged = _stage(tmp_path, {"src/attention.py": edited})
    assert (staged.dir / "attention.py").read_bytes() == PRISTINE
    assert staged.changed == ["attention.py"]
    assert any("src/attention.py differs from the provided attention.py" in n for n in staged.notes)


def test_same_attention_with_other_line_endings_is_not_reported(tmp_path):
    staged = _stage(tmp_path, {"src/attention.py": PRISTINE.replace(b"\n", b"  \r\n")})
    assert staged.changed == [] and not staged.notes
    assert (staged.dir / "attention.py").read_bytes() == PRISTINE


def test_data_comes_from_the_grader_and_the_answer_key_never_is_staged(tmp_path):
    staged = _stage(tmp_path, {"birth_dev.tsv": b"Where was X born?\tLondon\n",
                               "birth_test_gold.tsv": b"Where was Y born?\tParis\n"})
    data = ROOT / "test_suites" / "cs224n_pretraining" / "data"
    assert (staged.dir / "birth_dev.tsv").read_bytes() == (data / "birth_dev.tsv").read_bytes()
    assert (staged.dir / "wiki.txt").is_file() and (staged.dir / "attention.py").is_file()
    assert not (staged.dir / "birth_test_gold.tsv").exists()
    assert "vanilla.model.params" in {f.name for f in staged.missing}
