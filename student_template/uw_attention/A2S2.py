# %% [markdown]
# # A2S2: Building your own mini transformer
#
# CSE 447/517, Assignment 2, §2. Complete the functions marked `TODO` in §2.1, check them
# against PyTorch with the test cells, then train the mini GPT. Download this notebook as
# Python (File > Download > Download .py) and submit `A2S2.py`. Only §2.1's functions are
# graded from the code; §2.2 is graded from your report.
#
# Do not use `F.scaled_dot_product_attention`, `F.multi_head_attention_forward` or
# `nn.MultiheadAttention` in your functions.

# %%
!git clone https://github.com/cse447-uw/minGPT-attn.git
!pip install -q -e minGPT-attn

# %%
import math
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.append("minGPT-attn")
from mingpt.model import GPT
from mingpt.trainer import Trainer
from mingpt.utils import set_seed

DEVICE = 'cpu'

# %% [markdown]
# ## 2.1 Implementing attention from scratch
#
# ### Step 0: projections and the overall function
#
# `init_qkv_proj` is given. Fill in `self_attention` as you complete the steps below.

# %%
def init_qkv_proj(n_embd: int):
    """Three nn.Linear(n_embd, n_embd) (with bias): the query, key and value projections."""
    return nn.Linear(n_embd, n_embd), nn.Linear(n_embd, n_embd), nn.Linear(n_embd, n_embd)


def self_attention(Q, K, V, n_heads=1, causal=True):
    """Multi-head scaled dot-product self-attention, without projections.

    Q, K, V: (B, T, n_embd) -> (B, T, n_embd).
    """
    assert Q.shape == K.shape == V.shape
    B, n_tok, n_embd = Q.size()
    # TODO: split heads (if n_heads > 1), scores, scale, causal mask (if causal),
    # softmax, outputs, merge heads (if n_heads > 1)
    pass

# %% [markdown]
# ### Step 1: the core of attention

# %%
def pairwise_similarities(Q, K):
    """A = Q K^T over the last two dims: (..., T, d), (..., T, d) -> (..., T, T)."""
    # TODO
    pass


def attn_scaled(A, n_embd, n_heads):
    """Divide the scores by sqrt(n_embd / n_heads)."""
    # TODO
    pass


def attn_softmax(A):
    """Softmax over the keys (the last dim)."""
    # TODO
    pass


def compute_outputs(A, V):
    """Weighted sum of the values: (..., T, T), (..., T, d) -> (..., T, d)."""
    # TODO
    pass

# %% [markdown]
# Test 1: compare with PyTorch's `multi_head_attention_forward` (identity projections, no mask).

# %%
def torch_attention(Q, K, V, n_heads=1, causal=True):
    """PyTorch's reference, with identity in/out projections, no bias and no dropout."""
    B, n_tok, n_embd = Q.size()
    eye = torch.eye(n_embd, device=Q.device)
    mask = torch.ones(n_tok, n_tok, dtype=torch.bool, device=Q.device).triu(1) if causal else None
    out, _ = F.multi_head_attention_forward(
        Q.transpose(0, 1), K.transpose(0, 1), V.transpose(0, 1), n_embd, n_heads,
        None, None, None, None, False, 0.0, eye, None,
        training=False, need_weights=False, attn_mask=mask,
        use_separate_proj_weight=True, q_proj_weight=eye, k_proj_weight=eye, v_proj_weight=eye)
    return out.transpose(0, 1)

torch.manual_seed(447)
Q, K, V = torch.randn(3, 1, 10, 6)
expected = torch_attention(Q, K, V, n_heads=1, causal=False)
actual = self_attention(Q, K, V, n_heads=1, causal=False)
print("max abs error:", (actual - expected).abs().max().item())

# %% [markdown]
# ### Step 2: causal masking

# %%
def make_causal_mask(n_tok):
    """An (n_tok, n_tok) mask: token i may attend to tokens j <= i."""
    # TODO
    pass


def apply_causal_mask(mask, A):
    """Set the scores of future positions to -inf before the softmax."""
    # TODO
    pass

# %% [markdown]
# Test 2: causal, one head.

# %%
expected = torch_attention(Q, K, V, n_heads=1, causal=True)
actual = self_attention(Q, K, V, n_heads=1, causal=True)
print("max abs error:", (actual - expected).abs().max().item())

# %% [markdown]
# ### Step 3: multiple heads
#
# `split_heads_qkv` is given.

# %%
def split_heads_qkv(Q, K, V, n_heads):
    """split_heads applied to each of Q, K, V."""
    return (split_heads(Q, n_heads), split_heads(K, n_heads), split_heads(V, n_heads))


def split_heads(x, n_heads):
    """(B, T, n_embd) -> (B, n_heads, T, n_embd // n_heads)."""
    # TODO
    pass


def merge_heads(y):
    """(B, n_heads, T, d) -> (B, T, n_heads * d), the inverse of split_heads."""
    # TODO
    pass

# %% [markdown]
# Test 3: causal, three heads.

# %%
expected = torch_attention(Q, K, V, n_heads=3, causal=True)
actual = self_attention(Q, K, V, n_heads=3, causal=True)
print("max abs error:", (actual - expected).abs().max().item())

# %% [markdown]
# ## Training the mini transformer
#
# The modified minGPT calls `attn_fn(Q, K, V, n_heads=self.n_head, causal=True)` in each block.

# %%
DEVICE = 'cuda' if torch.cuda.is_available() else 'cpu'
set_seed(447)

model_config = GPT.get_default_config()
model_config.model_type = 'gpt-nano'
model_config.vocab_size = 50257
model_config.block_size = 100
model = GPT(model_config, init_qkv_proj=init_qkv_proj, attn_fn=self_attention).to(DEVICE)

train_config = Trainer.get_default_config()
train_config.learning_rate = 5e-4
train_config.max_iters = 20000
train_config.batch_size = 32
trainer = Trainer(train_config, model, train_dataset)

def batch_end_callback(trainer):
    if trainer.iter_num % 100 == 0:
        print(f"iter {trainer.iter_num}: train loss {trainer.loss.item():.5f}")

trainer.set_callback('on_batch_end', batch_end_callback)
trainer.run()

# %% [markdown]
# ## 2.2 Your experiment
#
# Modify attention (or anything else) here and report on it. This part is not graded from
# the code; the functions of §2.1 above are.

# %%
# Your experiment code here (not graded).
