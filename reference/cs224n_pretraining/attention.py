"""Causal self-attention and causal cross-attention (given: do not change this file).

Both follow minGPT: multi-head attention with query, key and value projections, a
lower-triangular mask built once for the block size, and an output projection.
"""
import math

import torch
import torch.nn as nn
from torch.nn import functional as F


class _MaskedAttention(nn.Module):
    """Key, query and value projections, dropouts, the output projection and the causal mask
    (lower-triangular ones of (1, 1, block_size, block_size)), shared by both attentions."""

    def __init__(self, config):
        super().__init__()
        assert config.n_embd % config.n_head == 0
        self.key = nn.Linear(config.n_embd, config.n_embd)
        self.query = nn.Linear(config.n_embd, config.n_embd)
        self.value = nn.Linear(config.n_embd, config.n_embd)
        self.attn_drop = nn.Dropout(config.attn_pdrop)
        self.resid_drop = nn.Dropout(config.resid_pdrop)
        self.proj = nn.Linear(config.n_embd, config.n_embd)
        size = config.block_size
        self.register_buffer("mask", torch.tril(torch.ones(size, size)).view(1, 1, size, size))
        self.n_head = config.n_head


class CausalSelfAttention(_MaskedAttention):
    """Masked multi-head self-attention: position i attends to positions <= i."""

    def forward(self, x):
        B, T, C = x.size()
        k = self.key(x).view(B, T, self.n_head, C // self.n_head).transpose(1, 2)     # (B, nh, T, hs)
        q = self.query(x).view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = self.value(x).view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))              # (B, nh, T, T)
        att = att.masked_fill(self.mask[:, :, :T, :T] == 0, -1e10)
        att = self.attn_drop(F.softmax(att, dim=-1))
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_drop(self.proj(y))


class CausalCrossAttention(_MaskedAttention):
    """Masked multi-head cross-attention.

    ``forward(x_kv, x_q)``: the FIRST argument gives the keys and values, the SECOND the
    queries. Query i attends to key positions <= i. Batch sizes broadcast, so a (1, m, d)
    query works with a (B, T, d) key/value input. Returns (B, Tq, d).
    """

    def forward(self, x_kv, x_q):
        Bk, Tk, C = x_kv.size()
        Bq, Tq, _ = x_q.size()
        hs = C // self.n_head
        k = self.key(x_kv).view(Bk, Tk, self.n_head, hs).transpose(1, 2)     # (Bk, nh, Tk, hs)
        v = self.value(x_kv).view(Bk, Tk, self.n_head, hs).transpose(1, 2)
        q = self.query(x_q).view(Bq, Tq, self.n_head, hs).transpose(1, 2)    # (Bq, nh, Tq, hs)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))              # (B, nh, Tq, Tk)
        att = att.masked_fill(self.mask[:, :, :Tq, :Tk] == 0, -1e10)
        att = self.attn_drop(F.softmax(att, dim=-1))
        y = att @ v                                                           # (B, nh, Tq, hs)
        y = y.transpose(1, 2).contiguous().view(max(Bk, Bq), Tq, C)
        return self.resid_drop(self.proj(y))
