"""UW CSE 447/517 (Winter 2024) A2: attention and transformers: A2S1, A2S2 §2.1 and A2S3.

Students submit their Colab notebooks downloaded as Python (``A2S1.py``, ``A2S2.py``,
``A2S3.py``; the ``.ipynb`` of any nbformat version is accepted too). All are loaded as Colab
ran them, statement by statement (``loader="notebook"``): every top-level statement runs in
order (A2S1's given cell seeds, normalises and rounds ``key``/``value`` in place), except
shell lines and magics, statements that raise (downloads fail offline) and statements past
the time cap (training); a broken cell does not sink the graded ones; ``tqdm.notebook`` is
plain ``tqdm`` and IPython's display helpers are inert.

Points (edit ``POINTS`` only; every test reads its weight from there):

A2S1, crafting queries: the error is the largest absolute difference between unscaled
attention ``softmax(q Kᵀ) V`` and the target; an error of at most 0.05 gets full credit.
  1.2.1 query121 selects v0 .......................... 2
  1.2.2 query122 selects every value (identity) ...... 2
  1.3.1 query131 averages all values ................. 2
  1.3.2 query132 averages v0 and v1 .................. 2
  1.4.1 m_key: new k2, query132 averages v0..v2 ...... 1  extra credit for 447 (``EXTRA_CREDIT``);
        graded from the value m_key had when the file passed it to check_query
  1.4.2 m_key: unit k2, query132 returns v2 .......... 1  extra credit for 447

A2S2 §2.1, attention from scratch (each function on its own against the reference, then
composed): pairwise_similarities, attn_scaled, attn_softmax, compute_outputs 1 each and 1
hidden; the causal mask (graded as the pair make/apply through the softmax) 2 + 1 hidden,
its device 1; split/merge heads 1 + 1 hidden; self_attention against PyTorch's
multi_head_attention_forward 1 + 1 + 2 + 2 hidden; the functions inside a two-layer
minGPT-style attention stack, forward 2 and backward 1 hidden. 20 points.

A2S3 §3, fine-tuning RoBERTa on SST-2 with HuggingFace, graded offline with a tiny
RoBERTa and a tokenizer trained on a hand-written corpus (``tiny_roberta.py``): the
dataset's __len__/__getitem__/__iter__ 1; collate_fn padding and labels 1, truncation at 512
tokens 1, random batches 1 hidden; compute_accuracy 1; train_one_epoch reproduces a reference
epoch exactly 2 + 1 hidden; evaluate (eval mode, no gradients, accuracy) 1 + 1 hidden.
10 points.

``total_points`` counts the regular points only (38); the extra credit comes on top. For
517, empty ``EXTRA_CREDIT`` (the total becomes 40).
"""
from autograder.assignment import Assignment, Ban, SubmissionFile

POINTS = {
    # A2S1
    "1.2.1": 2, "1.2.2": 2, "1.3.1": 2, "1.3.2": 2, "1.4.1": 1, "1.4.2": 1,
    # A2S2 §2.1
    "2.1.1": 1,   # pairwise_similarities
    "2.1.2": 1,   # attn_scaled
    "2.1.3": 1,   # attn_softmax
    "2.1.4": 1,   # compute_outputs
    "2.1.5": 1,   # the four step-1 functions on random shapes (hidden)
    "2.1.6": 2,   # make_causal_mask + apply_causal_mask
    "2.1.7": 1,   # causal mask, odd and large n (hidden)
    "2.1.8": 1,   # the masked scores stay on the device of A
    "2.1.9": 1,   # split_heads / merge_heads
    "2.1.10": 1,  # split_heads / merge_heads on random shapes (hidden)
    "2.1.11": 1,  # self_attention, 1 head, no mask
    "2.1.12": 1,  # self_attention, 1 head, causal
    "2.1.13": 2,  # self_attention, 3 heads, causal
    "2.1.14": 2,  # self_attention on random shapes and head counts (hidden)
    "2.1.15": 2,  # init_qkv_proj + self_attention in a 2-layer minGPT-style stack, forward
    "2.1.16": 1,  # ... backward: gradients of the projections and the input (hidden)
    # A2S3 §3
    "3.1": 1,     # SST2Dataset __len__, __getitem__, __iter__
    "3.2": 1,     # collate_fn: padding to the longest, label tensor
    "3.3": 1,     # collate_fn: truncation at max_length 512
    "3.4": 1,     # SST2Dataset + collate_fn through a DataLoader, random batches (hidden)
    "3.5": 1,     # compute_accuracy
    "3.6": 2,     # train_one_epoch reproduces a reference epoch
    "3.7": 1,     # train_one_epoch, random data, seed and batch size (hidden)
    "3.8": 1,     # evaluate: accuracy, eval mode, no gradients
    "3.9": 1,     # evaluate, random data and weights (hidden)
}
EXTRA_CREDIT = ("1.4.1", "1.4.2")

A2S2_GIVEN = ("init_qkv_proj", "split_heads_qkv")
A2S2_STUDENT = ("pairwise_similarities", "attn_scaled", "attn_softmax", "compute_outputs",
                "make_causal_mask", "apply_causal_mask", "split_heads", "merge_heads",
                "self_attention")

A2S3_GIVEN = ("SST2Example",)
A2S3_STUDENT = ("SST2Dataset", "compute_accuracy", "train_one_epoch", "evaluate")

ASSIGNMENT = Assignment(
    name="uw_attention",
    title="UW CSE 447/517 A2: attention and transformers",
    files=(
        SubmissionFile("A2S1.py", loader="notebook", watch=("m_key",),
                       expected_names=("query121", "query122", "query131", "query132", "m_key")),
        SubmissionFile("A2S2.py", loader="notebook", keep_first=A2S2_GIVEN + A2S2_STUDENT,
                       expected_names=A2S2_STUDENT),
        SubmissionFile("A2S3.py", loader="notebook", keep_first=A2S3_GIVEN + A2S3_STUDENT,
                       expected_names=A2S3_STUDENT),
    ),
    # imported once by the fork server (A2S3's tests build a tokenizer and a model in the worker);
    # the RoBERTa modules are named too: importing them takes ~3 s, more than the notebook
    # loader's per-statement cap on the student's own `from transformers import ...`.
    libraries=("transformers", "tokenizers", "transformers.models.roberta.modeling_roberta"),
    preload=("matplotlib.pyplot", "tqdm.notebook"),   # A2S1's and A2S3's own imports (0.4 s per A2S1 test)
    total_points=sum(p for k, p in POINTS.items() if k not in EXTRA_CREDIT),
    extra_credit=EXTRA_CREDIT,
    bans=(
        Ban(
            key="attention",
            file="A2S2.py",
            scope=A2S2_STUDENT,
            names=("torch.nn.functional.scaled_dot_product_attention",
                   "torch.nn.functional.multi_head_attention_forward",
                   "torch.nn.MultiheadAttention", "torch._native_multi_head_attention", "torch.nn.attention",
                   "torch.nn.Transformer", "torch.nn.TransformerEncoder", "torch.nn.TransformerEncoderLayer",
                   "torch.nn.TransformerDecoder", "torch.nn.TransformerDecoderLayer",
                   "torch.ops", "torch._C", "torch._refs", "torch._decomp", "torch._prims",
                   "torch._higher_order_ops", "torch._inductor", "torch._dynamo"),
            # SDPA and its kernels, the fused MHA op, flex attention; also what the notebook's own
            # torch_attention wrapper runs (F.multi_head_attention_forward): unusable in the graded functions
            runtime_ops=("scaled_dot", "multi_head_attention", "flash_attention", "efficient_attention",
                         "cudnn_attention", "flex_attention"),
            reason="attention must be written by hand (no F.scaled_dot_product_attention, "
                   "F.multi_head_attention_forward or nn.MultiheadAttention)",
        ),
    ),
)
