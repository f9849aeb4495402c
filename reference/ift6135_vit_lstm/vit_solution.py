"""
Reference solution: a small Vision Transformer (ViT) for CIFAR-10.

Everything here is written with plain torch ops:
- LayerNorm is hand-written (no nn.LayerNorm / F.layer_norm inside it),
- multi-head attention is hand-written (no nn.MultiheadAttention,
  F.multi_head_attention_forward or F.scaled_dot_product_attention).

Shapes below use B = batch, T = sequence length, H = num_heads,
D = head_size, C = channels, p = patch_size.
"""

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# -----------------------------------------------------------------------------


class LayerNorm(nn.Module):
    """Layer normalisation over the last dimension, with a learnable affine map."""

    def __init__(self, hidden_size, eps=1e-5):
        super(LayerNorm, self).__init__()
        self.hidden_size = hidden_size
        self.eps = eps
        self.weight = nn.Parameter(torch.Tensor(hidden_size))
        self.bias = nn.Parameter(torch.Tensor(hidden_size))
        self.reset_parameters()

    def forward(self, inputs):
        """inputs: float (*dims, hidden_size) -> float (*dims, hidden_size).
        Uses the biased variance (divide by n), as in the LayerNorm paper."""
        mean = inputs.mean(dim=-1, keepdim=True)
        var = ((inputs - mean) ** 2).mean(dim=-1, keepdim=True)
        normed = (inputs - mean) / torch.sqrt(var + self.eps)
        return normed * self.weight + self.bias

    def reset_parameters(self):
        nn.init.ones_(self.weight)
        nn.init.zeros_(self.bias)


# -----------------------------------------------------------------------------


class MultiHeadedAttention(nn.Module):
    """Multi-head scaled dot-product self-attention, no mask.
    Four affine projections (Q, K, V, output), each (H*D) -> (H*D) with a bias,
    so the module has 4*(H*D)**2 + 4*(H*D) learnable parameters."""

    def __init__(self, head_size, num_heads, sequence_length):
        super(MultiHeadedAttention, self).__init__()
        self.head_size = head_size
        self.num_heads = num_heads
        self.sequence_length = sequence_length

        n_embd = num_heads * head_size
        self.q_proj = nn.Linear(n_embd, n_embd)
        self.k_proj = nn.Linear(n_embd, n_embd)
        self.v_proj = nn.Linear(n_embd, n_embd)
        self.out_proj = nn.Linear(n_embd, n_embd)

    def get_attention_weights(self, queries, keys):
        """queries, keys: float (B, H, T, D) -> attention weights (B, H, T, T).
        Row t is softmax_s(q_t . k_s / sqrt(head_size)); each row sums to 1."""
        scores = queries @ keys.transpose(-2, -1) / math.sqrt(self.head_size)
        return F.softmax(scores, dim=-1)

    def apply_attention(self, queries, keys, values):
        """queries, keys, values: float (B, H, T, D) -> float (B, T, H*D).
        Attention-weighted values, with the heads concatenated."""
        weights = self.get_attention_weights(queries, keys)  # (B, H, T, T)
        outputs = weights @ values                           # (B, H, T, D)
        return self.merge_heads(outputs)                     # (B, T, H*D)

    def split_heads(self, tensor):
        """(B, T, H*dim) -> (B, H, T, dim), with y[b, h, t, d] == x[b, t, h*dim + d].
        dim is taken from the input (it need not equal head_size), as is T."""
        B, T, HD = tensor.shape
        dim = HD // self.num_heads
        return tensor.reshape(B, T, self.num_heads, dim).transpose(1, 2)

    def merge_heads(self, tensor):
        """(B, H, T, dim) -> (B, T, H*dim); the exact inverse of split_heads.
        Works on any input layout (reshape copies when it has to)."""
        B, H, T, dim = tensor.shape
        return tensor.transpose(1, 2).reshape(B, T, H * dim)

    def forward(self, hidden_states):
        """hidden_states: float (B, T, H*D) -> float (B, T, H*D)."""
        q = self.split_heads(self.q_proj(hidden_states))  # (B, H, T, D)
        k = self.split_heads(self.k_proj(hidden_states))
        v = self.split_heads(self.v_proj(hidden_states))
        attended = self.apply_attention(q, k, v)          # (B, T, H*D)
        return self.out_proj(attended)


# -----------------------------------------------------------------------------


class PostNormAttentionBlock(nn.Module):
    """Transformer block with the LayerNorms after the residual additions.
    (Given complete in the starter code.)"""

    def __init__(self, embed_dim, hidden_dim, num_heads, sequence_length, dropout=0.0):
        """embed_dim: token width (= num_heads * head_size); hidden_dim: width of the
        MLP's hidden layer; sequence_length: passed on to the attention module;
        dropout: rate used inside the MLP."""
        super().__init__()

        self.layer_norm_1 = LayerNorm(embed_dim)
        self.attn = MultiHeadedAttention(embed_dim // num_heads, num_heads, sequence_length)
        self.layer_norm_2 = LayerNorm(embed_dim)
        self.linear = nn.Sequential(
            nn.Linear(embed_dim, hidden_dim),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, embed_dim),
            nn.Dropout(dropout),
        )

    def forward(self, x):
        """x: float (B, T, embed_dim) -> float (B, T, embed_dim)."""
        attention_outputs = self.attn(x)
        attention_outputs = self.layer_norm_1(x + attention_outputs)
        outputs = self.linear(attention_outputs)
        outputs = self.layer_norm_2(outputs + attention_outputs)
        return outputs


class PreNormAttentionBlock(nn.Module):
    """Transformer block with the LayerNorms at the start of each residual branch."""

    def __init__(self, embed_dim, hidden_dim, num_heads, sequence_length, dropout=0.0):
        """embed_dim: token width (= num_heads * head_size); hidden_dim: width of the
        MLP's hidden layer; sequence_length: passed on to the attention module;
        dropout: rate used inside the MLP."""
        super().__init__()

        self.layer_norm_1 = LayerNorm(embed_dim)
        self.attn = MultiHeadedAttention(embed_dim // num_heads, num_heads, sequence_length)
        self.layer_norm_2 = LayerNorm(embed_dim)
        self.linear = nn.Sequential(
            nn.Linear(embed_dim, hidden_dim),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, embed_dim),
            nn.Dropout(dropout),
        )

    def forward(self, x):
        """x: float (B, T, embed_dim) -> float (B, T, embed_dim)."""
        h = x + self.attn(self.layer_norm_1(x))
        return h + self.linear(self.layer_norm_2(h))


# -----------------------------------------------------------------------------


class VisionTransformer(nn.Module):
    """ViT classifier: image -> patches -> tokens (+CLS, +positions) -> blocks -> logits."""

    def __init__(self, embed_dim=256, hidden_dim=512, num_channels=3, num_heads=8,
                 num_layers=4, num_classes=10, patch_size=4, num_patches=64,
                 block='prenorm', dropout=0.0):
        """embed_dim: token width; hidden_dim: MLP hidden width in each block;
        num_channels: image channels; num_patches: patches per image (the CLS token
        makes the sequence 1 + num_patches long); block: 'prenorm' for pre-norm
        blocks, anything else for post-norm; dropout: rate in the MLPs and on the
        input tokens."""
        super().__init__()

        self.patch_size = patch_size
        # one extra position for the CLS token
        self.sequence_length = 1 + num_patches
        self.input_layer = nn.Linear(num_channels * (patch_size ** 2), embed_dim)
        Block = PreNormAttentionBlock if block == 'prenorm' else PostNormAttentionBlock
        self.transformer = nn.Sequential(*[
            Block(embed_dim, hidden_dim, num_heads, self.sequence_length, dropout=dropout)
            for _ in range(num_layers)
        ])
        self.mlp_head = nn.Sequential(
            nn.LayerNorm(embed_dim),
            nn.Linear(embed_dim, num_classes)
        )
        self.dropout = nn.Dropout(dropout)

        self.cls_token = nn.Parameter(torch.randn(1, 1, embed_dim))
        self.pos_embedding = nn.Parameter(torch.randn(1, 1 + num_patches, embed_dim))

    def get_patches(self, image, patch_size, flatten_channels=True):
        """image: float (B, C, H, W), patch_size: p, flatten_channels: whether each
        patch comes out as one feature vector rather than as a small image.
        Returns patches: float (B, num_patches, C*p*p), num_patches = (H//p) * (W//p).
        Patches in row-major order over the grid, each flattened as (channel, row, col)
        -- the order F.unfold produces."""
        B, C, H, W = image.shape
        p = patch_size
        x = image.reshape(B, C, H // p, p, W // p, p)  # (B, C, gh, p, gw, p)
        x = x.permute(0, 2, 4, 1, 3, 5)               # (B, gh, gw, C, p, p)
        x = x.flatten(1, 2)                           # (B, gh*gw, C, p, p)
        if flatten_channels:
            x = x.flatten(2, 4)                       # (B, gh*gw, C*p*p)
        return x

    def forward(self, x):
        """x: float images (B, C, H, W) -> logits (B, num_classes). No softmax."""
        # Preprocess input (given)
        x = self.get_patches(x, self.patch_size)
        B, T, _ = x.shape
        x = self.input_layer(x)

        # Add CLS token and positional encoding (given)
        cls_token = self.cls_token.repeat(B, 1, 1)
        x = torch.cat([cls_token, x], dim=1)
        x = x + self.pos_embedding[:, :T + 1]

        # Transformer, then classify from the CLS token
        x = self.dropout(x)
        x = self.transformer(x)  # (B, T+1, embed_dim)
        cls = x[:, 0]            # (B, embed_dim)
        return self.mlp_head(cls)

    def loss(self, preds, labels):
        """preds: float logits (B, num_classes); labels: Long (B,) -> scalar mean cross-entropy."""
        return F.cross_entropy(preds, labels)
