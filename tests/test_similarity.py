"""Similarity between submissions (autograder.batch.similarity): planted near-copies are found,
distinct work and untouched templates are not, bad files never raise. No torch; fixtures built here."""
import ast
import os
import random
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from autograder.batch.similarity import (SimilarPair, fingerprints, normalise, plot, report_table,
                                         similar_pairs)
from support import strip_comments

ROOT = Path(__file__).resolve().parents[1]
VIT = "vit_solution.py"


def read(kind, assignment, name):
    return (ROOT / kind / assignment / name).read_text(encoding="utf-8")


VIT_REF = read("reference", "ift6135_vit_lstm", VIT)
VIT_TPL = read("student_template", "ift6135_vit_lstm", VIT)
CS_FILES = ("attention.py", "dataset.py", "model.py")
CS_REF = {f: read("reference", "cs224n_pretraining", f) for f in CS_FILES}
CS_TPL = {f: read("student_template", "cs224n_pretraining", f) for f in CS_FILES}


# ------------------------------------------------------------------ transformations

def rewrite_docstrings(src, replacement='"""My own implementation, written from scratch."""'):
    """Every other docstring removed, the others replaced (same indentation)."""
    lines = src.split("\n")
    spans = []
    for node in ast.walk(ast.parse(src)):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            spans.append((body[0].lineno, body[0].end_lineno, body[0].col_offset))
    for n, (first, last, col) in enumerate(sorted(spans, reverse=True)):
        lines[first - 1:last] = [] if n % 2 else [" " * col + replacement]
    return "\n".join(lines)


def rename(src, names):
    """``name``: a local (not after a dot); ``.name``: an attribute or method, everywhere."""
    for old, new in names.items():
        pattern = rf"\b{old[1:]}\b" if old.startswith(".") else rf"(?<![\w.]){old}\b"
        src = re.sub(pattern, new, src)
    return src


def swap_lines(src, first, second):
    """Swap two whole lines, given by their stripped text."""
    lines = src.split("\n")
    i = next(n for n, line in enumerate(lines) if line.strip() == first)
    j = next(n for n, line in enumerate(lines) if line.strip() == second)
    lines[i], lines[j] = lines[j], lines[i]
    return "\n".join(lines)


def insert_after(src, anchor, new_line):
    lines = src.split("\n")
    i = next(n for n, line in enumerate(lines) if line.strip() == anchor)
    indent = lines[i][:len(lines[i]) - len(lines[i].lstrip())]
    lines.insert(i + 1, indent + new_line)
    return "\n".join(lines)


def spread_blank_lines(src, every=4):
    out = []
    for n, line in enumerate(src.split("\n")):
        out.append(line)
        if n % every == 0:
            out.append("")
    return "\n".join(out)


def disguise(src, names):
    """Comments gone, docstrings removed or replaced, names renamed, blank lines moved."""
    return spread_blank_lines(rename(rewrite_docstrings(strip_comments(src)), names))


def vit_near_copy(src=VIT_REF):
    """The reference as a copier would hand it in: comments gone, docstrings removed or replaced,
    locals, attributes and helpers renamed, statements reordered and added, blank lines moved."""
    src = rewrite_docstrings(strip_comments(src))
    src = rename(src, {"mean": "mu", "var": "variance", "normed": "x_hat", "scores": "att_logits",
                       "weights": "probs", "outputs": "ctx", "tensor": "t_in", "HD": "width",
                       "attended": "mixed", "image": "img", "h": "hid", "cls": "cls_vec",
                       "n_embd": "d_model"})
    src = rename(src, {".q_proj": "wq", ".k_proj": "wk", ".v_proj": "wv", ".out_proj": "wo",
                       ".split_heads": "to_heads", ".merge_heads": "from_heads"})
    src = swap_lines(src, "self.wq = nn.Linear(d_model, d_model)", "self.wk = nn.Linear(d_model, d_model)")
    src = swap_lines(src, "q = self.to_heads(self.wq(hidden_states))",
                     "k = self.to_heads(self.wk(hidden_states))")
    src = insert_after(src, "B, T, width = t_in.shape", "assert t_in.dim() == 3, 'expected (B, T, H*D)'")
    src = insert_after(src, "p = patch_size", "# cut the image into tiles")
    return spread_blank_lines(src)


def cs_near_copy():
    dataset = rename(strip_comments(CS_REF["dataset.py"]),
                     {"document": "doc", "masked_len": "span_len", "start": "offset", "masked": "hidden",
                      "prefix": "head", "suffix": "tail", "text": "s"})
    dataset = insert_after(dataset, "s = s + PAD_CHAR * (self.block_size - len(s))", "assert len(s) == self.block_size")
    model = rename(strip_comments(CS_REF["model.py"]), {"x_input": "inp"})
    return {"attention.py": CS_REF["attention.py"], "dataset.py": spread_blank_lines(dataset, 3),
            "model.py": spread_blank_lines(model, 5)}


# ------------------------------------------------------------------ distinct work, written here

_TODO = re.compile(r"(?m)^( *)# =+\n(?:\1#.*\n)*?\1# =+\n(?:\1pass\n)?")


def fill(template, bodies):
    """The template with its k-th TODO block replaced by bodies[k]."""
    parts = iter(bodies)
    out = _TODO.sub(lambda m: textwrap.indent(textwrap.dedent(next(parts)).strip("\n") + "\n", m.group(1)),
                    template)
    assert next(parts, None) is None, "a body was not used"
    return out


VIT_EINSUM = fill(VIT_TPL, [
    """
    mu = inputs.mean(-1, keepdim=True)
    sigma2 = inputs.var(-1, unbiased=False, keepdim=True)
    return self.weight * (inputs - mu) * torch.rsqrt(sigma2 + self.eps) + self.bias
    """, """
    width = self.num_heads * self.head_size
    self.qkv = nn.Linear(width, 3 * width)
    self.proj = nn.Linear(width, width)
    """, """
    logits = torch.einsum("bhqd,bhkd->bhqk", queries, keys)
    logits = logits * self.head_size ** -0.5
    return logits.softmax(dim=-1)
    """, """
    attn = self.get_attention_weights(queries, keys)
    mixed = torch.einsum("bhqk,bhkd->bhqd", attn, values)
    return self.merge_heads(mixed)
    """, """
    return tensor.unflatten(-1, (self.num_heads, -1)).transpose(1, 2)
    """, """
    return tensor.permute(0, 2, 1, 3).flatten(2)
    """, """
    q, k, v = self.qkv(hidden_states).chunk(3, dim=-1)
    out = self.apply_attention(self.split_heads(q), self.split_heads(k), self.split_heads(v))
    return self.proj(out)
    """, """
    x = x + self.attn(self.layer_norm_1(x))
    x = x + self.linear(self.layer_norm_2(x))
    return x
    """, """
    patches = F.unfold(image, kernel_size=patch_size, stride=patch_size)
    patches = patches.transpose(1, 2)
    if not flatten_channels:
        n, count, _ = patches.shape
        patches = patches.reshape(n, count, image.shape[1], patch_size, patch_size)
    return patches
    """, """
    x = self.transformer(self.dropout(x))
    return self.mlp_head(x[:, 0, :])
    """, """
    return nn.functional.cross_entropy(preds, labels, reduction="mean")
    """])

VIT_LOOPS = fill(VIT_TPL, [
    """
    n = inputs.shape[-1]
    centred = inputs - inputs.sum(dim=-1, keepdim=True) / n
    spread = (centred * centred).sum(dim=-1, keepdim=True) / n
    out = centred / (spread + self.eps).sqrt()
    return out * self.weight + self.bias
    """, """
    d = num_heads * head_size
    self.projections = nn.ModuleDict({name: nn.Linear(d, d) for name in ("query", "key", "value", "output")})
    """, """
    scale = 1.0 / math.sqrt(queries.size(-1))
    sim = torch.matmul(queries, keys.transpose(2, 3)) * scale
    sim = sim - sim.max(dim=-1, keepdim=True).values
    e = torch.exp(sim)
    return e / e.sum(dim=-1, keepdim=True)
    """, """
    heads = []
    w = self.get_attention_weights(queries, keys)
    for h in range(self.num_heads):
        heads.append(torch.matmul(w[:, h], values[:, h]))
    return torch.cat(heads, dim=-1)
    """, """
    chunks = torch.chunk(tensor, self.num_heads, dim=2)
    return torch.stack(chunks, dim=1)
    """, """
    pieces = [tensor[:, i] for i in range(tensor.size(1))]
    return torch.cat(pieces, dim=2)
    """, """
    proj = self.projections
    parts = [self.split_heads(proj[name](hidden_states)) for name in ("query", "key", "value")]
    return proj["output"](self.apply_attention(*parts))
    """, """
    y = self.layer_norm_1(x)
    y = x + self.attn(y)
    z = self.linear(self.layer_norm_2(y))
    return y + z
    """, """
    b, c, height, width = image.shape
    rows, cols = height // patch_size, width // patch_size
    out = []
    for i in range(rows):
        for j in range(cols):
            tile = image[:, :, i * patch_size:(i + 1) * patch_size, j * patch_size:(j + 1) * patch_size]
            out.append(tile.flatten(1) if flatten_channels else tile)
    return torch.stack(out, dim=1)
    """, """
    h = self.dropout(x)
    for block in self.transformer:
        h = block(h)
    cls_out = h[:, 0]
    return self.mlp_head(cls_out)
    """, """
    logp = F.log_softmax(preds, dim=-1)
    picked = logp.gather(1, labels.unsqueeze(1)).squeeze(1)
    return -picked.mean()
    """])


def cs_fill(getitem, model_blocks):
    dataset = CS_TPL["dataset.py"].replace("        raise NotImplementedError\n",
                                           textwrap.indent(textwrap.dedent(getitem).strip("\n") + "\n", " " * 8))
    model = CS_TPL["model.py"]
    for body in model_blocks:
        model = re.sub(r"(?m)^( *)# TODO \[part g\].*\n(?:\1#.*\n)*\1pass\n",
                       lambda m: textwrap.indent(textwrap.dedent(body).strip("\n") + "\n", m.group(1)), model,
                       count=1)
    assert "TODO" not in model and "NotImplementedError" not in dataset
    return {"attention.py": CS_TPL["attention.py"], "dataset.py": dataset, "model.py": model}


CS_GAUSS = cs_fill("""
    doc = self.data[idx]
    keep = random.randint(4, int(self.block_size * 7 / 8))
    doc = doc[:keep]
    n = len(doc)
    span = min(n, max(1, int(random.gauss(n / 4, n / 8)))) if n else 0
    begin = random.randrange(0, n - span + 1)
    pieces = [doc[:begin], MASK_CHAR, doc[begin + span:], MASK_CHAR, doc[begin:begin + span]]
    s = "".join(pieces).ljust(self.block_size, PAD_CHAR)
    ids = torch.tensor([self.stoi[ch] for ch in s], dtype=torch.long)
    return ids[:-1], ids[1:]
    """, ["""
    self.C = nn.Parameter(torch.empty(1, config.bottleneck_dim, config.n_embd))
    nn.init.xavier_uniform_(self.C)
    self.ln1 = nn.LayerNorm(config.n_embd)
    self.ln2 = nn.LayerNorm(config.n_embd)
    self.attn = attention.CausalCrossAttention(config)
    self.mlp = _mlp(config)
    """, """
    h = self.C + self.attn(self.ln1(x_input), self.C)
    return h + self.mlp(self.ln2(h))
    """, """
    self.ln1 = nn.LayerNorm(config.n_embd)
    self.ln2 = nn.LayerNorm(config.n_embd)
    self.attn = attention.CausalCrossAttention(config)
    self.mlp = _mlp(config)
    """, """
    h = x_input + self.attn(self.ln1(y), x_input)
    return h + self.mlp(self.ln2(h))
    """])

CS_UNIFORM = cs_fill("""
    text = self.data[idx]
    length = random.choice(range(4, int(self.block_size * 7 / 8) + 1))
    text = text[:length]
    masked_len = int(len(text) * random.uniform(0.1, 0.4))
    offset = random.randint(0, len(text) - masked_len)
    prefix, masked, suffix = text[:offset], text[offset:offset + masked_len], text[offset + masked_len:]
    out = prefix + MASK_CHAR + suffix + MASK_CHAR + masked
    while len(out) < self.block_size:
        out += PAD_CHAR
    encoded = list(map(lambda c: self.stoi[c], out))
    x = torch.LongTensor(encoded[:-1])
    y = torch.LongTensor(encoded[1:])
    return x, y
    """, ["""
    basis = torch.empty(1, config.bottleneck_dim, config.n_embd)
    nn.init.xavier_uniform_(basis)
    self.C = nn.Parameter(basis)
    self.attn = attention.CausalCrossAttention(config)
    self.norm_kv, self.norm_out = nn.LayerNorm(config.n_embd), nn.LayerNorm(config.n_embd)
    self.mlp = _mlp(config)
    """, """
    batch_queries = self.C
    attended = self.attn(self.norm_kv(x_input), batch_queries) + batch_queries
    out = self.mlp(self.norm_out(attended))
    return attended + out
    """, """
    self.attn = attention.CausalCrossAttention(config)
    self.norm_kv, self.norm_out = nn.LayerNorm(config.n_embd), nn.LayerNorm(config.n_embd)
    self.mlp = _mlp(config)
    """, """
    attended = self.attn(self.norm_kv(y), x_input)
    attended = attended + x_input
    return attended + self.mlp(self.norm_out(attended))
    """])


def vit_class(**work):
    return {sid: {VIT: src} for sid, src in work.items()}


def score(pairs, a, b):
    return next((p.similarity for p in pairs if {p.a, p.b} == {a, b}), 0.0)


# ------------------------------------------------------------------ fixtures are what they claim

def test_the_fixtures_are_valid_python_and_really_transformed():
    near = vit_near_copy()
    for src in (near, VIT_EINSUM, VIT_LOOPS, *cs_near_copy().values(), *CS_GAUSS.values(), *CS_UNIFORM.values()):
        ast.parse(src)
    assert "mean" not in re.sub(r"\.mean\(", "", near) and "q_proj" not in near and "# (B" not in near
    assert near.index("self.wk =") < near.index("self.wq =")
    assert "TODO: Write" not in VIT_EINSUM and "TODO: Write" not in VIT_LOOPS


# ------------------------------------------------------------------ (1) planted near-copies are found

def test_a_renamed_reordered_reference_copy_is_found_with_high_similarity():
    pairs = similar_pairs(vit_class(ref=VIT_REF, copy=vit_near_copy(), einsum=VIT_EINSUM, loops=VIT_LOOPS),
                          {VIT: VIT_TPL})
    assert [(p.a, p.b) for p in pairs] == [("copy", "ref")]
    assert pairs[0].similarity >= 0.8
    ranges = pairs[0].shared_lines[VIT]
    ref_lines = VIT_REF.split("\n")
    covered = {n for _, (b0, b1) in ranges for n in range(b0, b1 + 1)}       # b is "ref"
    assert any("torch.sqrt(var + self.eps)" in ref_lines[n - 1] for n in covered)
    assert any("x.permute(0, 2, 4, 1, 3, 5)" in ref_lines[n - 1] for n in covered)
    assert not any("self.cls_token.repeat(B, 1, 1)" in ref_lines[n - 1] for n in covered)   # given code


def test_a_copy_across_several_files_is_found():
    class_ = {"ref": CS_REF, "copy": cs_near_copy(), "gauss": CS_GAUSS, "uniform": CS_UNIFORM}
    pairs = similar_pairs(class_, CS_TPL)
    assert [(p.a, p.b) for p in pairs] == [("copy", "ref")]
    assert pairs[0].similarity >= 0.8
    assert "dataset.py" in pairs[0].shared_lines and "attention.py" not in pairs[0].shared_lines   # given


def test_a_copy_with_a_syntax_error_in_the_middle_is_still_found():
    lines = vit_near_copy().split("\n")
    lines.insert(len(lines) // 2, "    def broken(self, :")
    pairs = similar_pairs(vit_class(ref=VIT_REF, copy="\n".join(lines)), {VIT: VIT_TPL})
    assert pairs and pairs[0].similarity >= 0.7


# ------------------------------------------------------------------ (2) distinct work is not

def test_distinct_correct_implementations_are_not_flagged():
    class_ = vit_class(ref=VIT_REF, einsum=VIT_EINSUM, loops=VIT_LOOPS)
    assert similar_pairs(class_, {VIT: VIT_TPL}) == []
    scores = [p.similarity for p in similar_pairs(class_, {VIT: VIT_TPL}, threshold=0.0, min_shared_tokens=0)]
    assert max(scores, default=0.0) < 0.2


def test_distinct_work_over_several_files_is_not_flagged():
    class_ = {"ref": CS_REF, "gauss": CS_GAUSS, "uniform": CS_UNIFORM}
    assert similar_pairs(class_, CS_TPL) == []
    scores = [p.similarity for p in similar_pairs(class_, CS_TPL, threshold=0.0, min_shared_tokens=0)]
    assert max(scores, default=0.0) < 0.2


# ------------------------------------------------------------------ (3) the template is excluded

def test_untouched_templates_are_not_similar():
    class_ = {"a": dict(CS_TPL, **{VIT: VIT_TPL}), "b": dict(CS_TPL, **{VIT: VIT_TPL})}
    template = dict(CS_TPL, **{VIT: VIT_TPL})
    assert similar_pairs(class_, template, threshold=0.0, min_shared_tokens=0) == []
    assert similar_pairs({"a": {"attention.py": CS_REF["attention.py"]}, "b": {"attention.py": CS_REF["attention.py"]}},
                         {"attention.py": CS_TPL["attention.py"]}, threshold=0.0, min_shared_tokens=0) == []


def test_the_template_with_its_comments_stripped_and_blank_lines_moved_is_still_template():
    edited = spread_blank_lines(strip_comments(VIT_TPL))
    assert similar_pairs(vit_class(a=edited, b=VIT_TPL), {VIT: VIT_TPL}, threshold=0.0, min_shared_tokens=0) == []


def test_without_the_template_the_given_code_makes_two_empty_submissions_similar():
    """The control for the test above: the exclusion is what keeps them apart."""
    pairs = similar_pairs(vit_class(a=VIT_TPL, b=VIT_TPL), {})
    assert pairs and pairs[0].similarity == 1.0


# ------------------------------------------------------------------ (4) bad files never raise

JUNK = {
    "syntax": "def f(:\n    return (1,\nclass\n",
    "nulls": "x = 1\x00\x00\ny = 2\n" * 50,
    "binary": bytes(random.Random(0).randrange(256) for _ in range(20000)).decode("latin-1"),
    "bytes": b"\xff\xfe\x00junk\x89PNG",
    "none": None,
    "deep": "(" * 5000 + "1" + ")" * 10,
    "unterminated": 'x = """never closed\n' + "y = 1\n" * 100,
    "tabs": "if x:\n\tif y:\n        z = 1\n\t  w = 2\n",
    "empty": "",
    "huge": "value = compute(alpha, beta) + 3\n" * 60000,
}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n == "huge" else n for n in JUNK])
def test_a_broken_file_never_raises(name):
    assert isinstance(fingerprints(JUNK[name]), dict)
    class_ = {"bad": {VIT: JUNK[name]}, "ref": {VIT: VIT_REF}, "copy": {VIT: vit_near_copy()}}
    pairs = similar_pairs(class_, {VIT: VIT_TPL})
    assert [(p.a, p.b) for p in pairs] == [("copy", "ref")]


def test_a_missing_file_has_no_fingerprints_and_a_missing_template_file_excludes_nothing():
    class_ = {"ref": CS_REF, "copy": {"dataset.py": cs_near_copy()["dataset.py"]}, "empty": {}}
    pairs = similar_pairs(class_, {"model.py": CS_TPL["model.py"]})
    assert [(p.a, p.b) for p in pairs] == [("copy", "ref")]
    assert set(pairs[0].shared_lines) == {"dataset.py"}


def test_the_fallback_tokenizer_drops_comments_and_strings_like_the_stdlib_one():
    good = "def f(a, b):\n    '''doc'''\n    return a.sum(dim=1) + b  # note\n"
    broken = good + "def g(:\n" + good.replace("f(", "h(")
    first = [t for t, _, _ in normalise(good)]
    assert first == ["def", "N", "(", "N", ",", "N", ")", ":", ";", "return", "N", ".", "sum", "(", "N", "=",
                     "1", ")", "+", "N", ";"]
    tail = [t for t, _, _ in normalise(broken)][-len(first):]
    assert tail == first


def test_names_are_ignored_but_library_calls_and_keywords_are_kept():
    a = [t for t, _, _ in normalise("def f(x):\n    y = torch.softmax(self.proj(x), dim=-1)\n    return len(y)\n")]
    b = [t for t, _, _ in normalise("def g(inp):\n    out = tt.softmax(self.lin(inp), dim=-1)\n    return len(out)\n")]
    assert a == b and "softmax" in a and "len" in a and "proj" not in a


# ------------------------------------------------------------------ (5) symmetry, ordering, determinism

def test_pairs_are_symmetric_ordered_and_independent_of_input_order():
    near2 = disguise(VIT_EINSUM, {"sigma2": "s2", "logits": "scores", "patches": "tiles", ".qkv": "in_proj"})
    class_ = vit_class(zed=VIT_REF, alpha=vit_near_copy(), mid=VIT_EINSUM, beta=near2, loops=VIT_LOOPS)
    pairs = similar_pairs(class_, {VIT: VIT_TPL}, threshold=0.0, min_shared_tokens=0)
    again = similar_pairs(dict(reversed(list(class_.items()))), {VIT: VIT_TPL}, threshold=0.0, min_shared_tokens=0)
    assert [(p.a, p.b, p.similarity, p.shared_lines) for p in pairs] == \
           [(p.a, p.b, p.similarity, p.shared_lines) for p in again]
    assert all(p.a < p.b and 0.0 <= p.similarity <= 1.0 for p in pairs)
    assert [p.similarity for p in pairs] == sorted((p.similarity for p in pairs), reverse=True)
    assert {(p.a, p.b) for p in similar_pairs(class_, {VIT: VIT_TPL})} == {("alpha", "zed"), ("beta", "mid")}
    swapped = similar_pairs(vit_class(a=vit_near_copy(), b=VIT_REF), {VIT: VIT_TPL})
    flipped = similar_pairs(vit_class(a=VIT_REF, b=vit_near_copy()), {VIT: VIT_TPL})
    assert swapped[0].similarity == flipped[0].similarity
    assert sorted((b, a) for a, b in swapped[0].shared_lines[VIT]) == sorted(flipped[0].shared_lines[VIT])


def test_threshold_is_inclusive():
    pairs = similar_pairs(vit_class(ref=VIT_REF, copy=vit_near_copy()), {VIT: VIT_TPL})
    exact = pairs[0].similarity
    assert similar_pairs(vit_class(ref=VIT_REF, copy=vit_near_copy()), {VIT: VIT_TPL}, threshold=exact)
    assert not similar_pairs(vit_class(ref=VIT_REF, copy=vit_near_copy()), {VIT: VIT_TPL}, threshold=exact + 1e-9)


def test_fingerprints_do_not_depend_on_the_process_hash_seed():
    code = ("import sys; from autograder.batch.similarity import fingerprints; "
            "print(sorted(fingerprints(sys.stdin.read())))")
    seen = {subprocess.run([sys.executable, "-c", code], input=VIT_REF, capture_output=True, text=True, check=True,
                           cwd=ROOT, env=dict(os.environ, PYTHONHASHSEED=seed)).stdout for seed in ("1", "2")}
    assert len(seen) == 1 and len(seen.pop()) > 100


# ------------------------------------------------------------------ report table and figure

def test_report_table_lists_pairs_with_percent_and_lines():
    pairs = similar_pairs(vit_class(ref=VIT_REF, copy=vit_near_copy()), {VIT: VIT_TPL})
    table = report_table(pairs)
    row = table.split("\n")[2]
    assert row.split()[:2] == ["copy", "ref"] and f"{pairs[0].similarity:.0%}" in row and VIT in row
    assert re.search(r"\d+-\d+~\d+-\d+", row)
    assert "none" in report_table([])
    many = [SimilarPair(f"s{i}", f"t{i}", 0.9, {}) for i in range(5)]
    assert report_table(many, limit=2).endswith("... and 3 more")


def test_plot_writes_a_png_and_never_raises(tmp_path, monkeypatch):
    pairs = similar_pairs(vit_class(ref=VIT_REF, copy=vit_near_copy()), {VIT: VIT_TPL})
    out = plot(pairs, ["copy", "einsum", "ref"], tmp_path / "similarity.png")
    assert out == tmp_path / "similarity.png" and out.read_bytes()[:4] == b"\x89PNG"
    assert plot([], ["a", "b"], tmp_path / "none.png").exists()
    assert plot(pairs, ["copy", "ref"], tmp_path / "missing" / "dir" / "x.png") is None
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    assert plot(pairs, ["copy", "ref"], tmp_path / "no_mpl.png") is None


# ------------------------------------------------------------------ (6) a class-sized run (smoke, no timing)

def synthetic_file(rng, lines=400):
    ops = ["+", "-", "*", "@", "/"]
    calls = ["matmul", "softmax", "sum", "mean", "transpose", "view", "reshape", "exp", "sqrt", "cat"]
    out = []
    while len(out) < lines:
        out.append(f"def f{len(out)}(a, b, c={rng.randint(0, 9)}):")
        for _ in range(rng.randint(3, 12)):
            kind = rng.random()
            if kind < 0.5:
                out.append(f"    v{rng.randint(0, 9)} = a.{rng.choice(calls)}({rng.randint(-2, 3)}) "
                           f"{rng.choice(ops)} b.{rng.choice(calls)}(c, {rng.randint(0, 16)})")
            elif kind < 0.7:
                out.append(f"    for i in range({rng.randint(1, 20)}):")
                out.append(f"        a = a {rng.choice(ops)} torch.{rng.choice(calls)}(b[i], dim={rng.randint(-1, 2)})")
            elif kind < 0.85:
                out.append(f"    if a.{rng.choice(calls)}() > {rng.random():.2f}:")
                out.append(f"        b = [x {rng.choice(ops)} {rng.randint(0, 30)} for x in range(c)]")
            else:
                out.append(f"    # {rng.random()}")
        out.append(f"    return {rng.choice(['a', 'b', 'c'])}")
    return "\n".join(out[:lines]) + "\n"


@pytest.mark.slow
def test_a_class_of_200_synthetic_submissions_runs():
    rng = random.Random(1234)
    class_ = {f"s{n:03d}": {"work.py": synthetic_file(rng)} for n in range(200)}
    class_["s199"] = {"work.py": spread_blank_lines(class_["s042"]["work.py"].replace("v1", "renamed"))}
    pairs = similar_pairs(class_, {"work.py": "import torch\n"})
    assert ("s042", "s199") in [(p.a, p.b) for p in pairs]
