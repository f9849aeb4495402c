"""
Starter code: a small Vision Transformer (ViT) for CIFAR-10.

Fill in every block marked TODO. Rules:
- do not use nn.LayerNorm or anything that calls torch.layer_norm /
  F.layer_norm inside your LayerNorm (mlp_head's nn.LayerNorm is given, keep it),
- do not use nn.MultiheadAttention, F.multi_head_attention_forward or
  F.scaled_dot_product_attention in MultiHeadedAttention.
Do not rename anything: the autograder imports these names.

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
        # ==========================
        # TODO: Write your code here
        # Normalise over the LAST dimension only:
        #     (x - mean) / sqrt(var + eps) * weight + bias
        # where var is the BIASED variance (divide by n, not n - 1; note that
        # torch.var is unbiased by default). Do not forget eps.
        # ==========================
        pass

    def reset_parameters(self):
        nn.init.ones_(self.weight)
        nn.init.zeros_(self.bias)


# -----------------------------------------------------------------------------


class MultiHeadedAttention(nn.Module):
    """Multi-head scaled dot-product self-attention, no mask.
    Needs affine projections (with biases) for the queries, keys, values and output."""

    def __init__(self, head_size, num_heads, sequence_length):
        super(MultiHeadedAttention, self).__init__()
        self.head_size = head_size
        self.num_heads = num_heads
        self.sequence_length = sequence_length

        # ==========================
        # TODO: Write your code here
        # Create the modules for the query, key, value and output projections
        # (each with a bias), mapping num_heads * head_size features to
        # num_heads * head_size features. Separate or fused layers are both fine.
        # ==========================

    def get_attention_weights(self, queries, keys):
        """queries, keys: float (B, H, T, D) -> attention weights (B, H, T, T).
        Row t is softmax_s(q_t . k_s / sqrt(head_size)); each row sums to 1."""
        # ==========================
        # TODO: Write your code here
        # Return softmax(Q K^T / sqrt(head_size)), the softmax taken over the
        # last axis (the keys). There is no mask.
        # ==========================
        pass

    def apply_attention(self, queries, keys, values):
        """queries, keys, values: float (B, H, T, D) -> float (B, T, H*D).
        Attention-weighted values, with the heads concatenated."""
        # ==========================
        # TODO: Write your code here
        # Weight the values with get_attention_weights, then concatenate the
        # heads (merge_heads) to get a (B, T, H*D) tensor.
        # ==========================
        pass

    def split_heads(self, tensor):
        """(B, T, H*dim) -> (B, H, T, dim), with y[b, h, t, d] == x[b, t, h*dim + d].
        dim is taken from the input (it need not equal head_size), as is T."""
        # ==========================
        # TODO: Write your code here
        # Only reshapes and transposes are needed. Take T and dim from the
        # input: they need not equal sequence_length or head_size.
        # ==========================
        pass

    def merge_heads(self, tensor):
        """(B, H, T, dim) -> (B, T, H*dim); the exact inverse of split_heads.
        Must work on any (B, H, T, dim) input, not only split_heads' output."""
        # ==========================
        # TODO: Write your code here
        # The inverse of split_heads. It must work on any (B, H, T, dim)
        # tensor, not only on the output of split_heads.
        # ==========================
        pass

    def forward(self, hidden_states):
        """hidden_states: float (B, T, H*D) -> float (B, T, H*D)."""
        # ==========================
        # TODO: Write your code here
        # Project to queries, keys and values, split the heads, apply the
        # attention, then apply the output projection.
        # ==========================
        pass


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
        # ==========================
        # TODO: Write your code here
        # Same modules as PostNormAttentionBlock, but each LayerNorm is applied
        # to the input of its branch (attention, then MLP), before the residual add.
        # ==========================
        pass


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
        # ==========================
        # TODO: Write your code here
        # Cut the image into non-overlapping patch_size x patch_size patches.
        # Do not assume 3 channels.
        # ==========================
        pass

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

        # ==========================
        # TODO: Write your code here
        # Apply dropout, the transformer, then mlp_head on the CLS token
        # (position 0). Return the logits (no softmax).
        # ==========================
        pass

    def loss(self, preds, labels):
        """preds: float logits (B, num_classes); labels: Long (B,) -> scalar mean cross-entropy."""
        # ==========================
        # TODO: Write your code here
        # Return the mean cross-entropy of the mini-batch.
        # ==========================
        pass
