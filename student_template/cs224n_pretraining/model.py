"""GPT model (minGPT), with the Perceiver variant's down- and up-projection blocks."""
import torch
import torch.nn as nn
from torch.nn import functional as F

import attention


class GPTConfig:
    """Hyperparameters; anything passed as a keyword becomes an attribute."""
    embd_pdrop = 0.1
    resid_pdrop = 0.1
    attn_pdrop = 0.1
    perceiver = False
    bottleneck_dim = None

    def __init__(self, vocab_size, block_size, **kwargs):
        self.vocab_size = vocab_size
        self.block_size = block_size
        for k, v in kwargs.items():
            setattr(self, k, v)


def _mlp(config):
    return nn.Sequential(
        nn.Linear(config.n_embd, 4 * config.n_embd),
        nn.GELU(),
        nn.Linear(4 * config.n_embd, config.n_embd),
        nn.Dropout(config.resid_pdrop),
    )


class Block(nn.Module):
    """A pre-LayerNorm transformer block."""

    def __init__(self, config):
        super().__init__()
        self.ln1 = nn.LayerNorm(config.n_embd)
        self.ln2 = nn.LayerNorm(config.n_embd)
        self.attn = attention.CausalSelfAttention(config)
        self.mlp = _mlp(config)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        x = x + self.mlp(self.ln2(x))
        return x


class DownProjectBlock(nn.Module):
    """First Perceiver block: cross-attends from a learned basis C (m queries) to the
    input (B, T, d), reducing the sequence to (B, m, d)."""

    def __init__(self, config):
        super().__init__()
        # TODO [part g]: the learnable basis self.C, an nn.Parameter of shape
        # (1, config.bottleneck_dim, config.n_embd) initialised with nn.init.xavier_uniform_,
        # and the layers of a Block, with attention.CausalCrossAttention.
        pass

    def forward(self, x_input):
        # TODO [part g]: cross-attention with queries from self.C and keys/values from
        # x_input (see CausalCrossAttention.forward's argument order), then the MLP.
        pass


class UpProjectBlock(nn.Module):
    """Last Perceiver block: cross-attends from the input (T queries) to the bottleneck
    output (B, m, d), bringing the sequence back to (B, T, d)."""

    def __init__(self, config):
        super().__init__()
        # TODO [part g]: the layers of a Block, with attention.CausalCrossAttention.
        pass

    def forward(self, y, x_input):
        # TODO [part g]: cross-attention with queries from x_input and keys/values from y,
        # then the MLP.
        pass


class GPT(nn.Module):
    """The full language model: embeddings, blocks, final LayerNorm and the output head."""

    def __init__(self, config):
        super().__init__()
        self.tok_emb = nn.Embedding(config.vocab_size, config.n_embd)
        self.pos_emb = nn.Parameter(torch.zeros(1, config.block_size, config.n_embd))
        self.drop = nn.Dropout(config.embd_pdrop)
        self.perceiver = config.perceiver
        if config.perceiver:
            input_block_size = config.block_size
            self.down_block = DownProjectBlock(config)
            config.block_size = config.bottleneck_dim       # the middle blocks see m positions
            self.blocks = nn.Sequential(*[Block(config) for _ in range(config.n_layer - 2)])
            config.block_size = input_block_size
            self.up_block = UpProjectBlock(config)
        else:
            self.blocks = nn.Sequential(*[Block(config) for _ in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(config.n_embd)
        self.head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.block_size = config.block_size
        self.apply(self._init_weights)

    def _init_weights(self, module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            module.weight.data.normal_(mean=0.0, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                module.bias.data.zero_()
        elif isinstance(module, nn.LayerNorm):
            module.bias.data.zero_()
            module.weight.data.fill_(1.0)

    def get_block_size(self):
        return self.block_size

    def forward(self, idx, targets=None):
        b, t = idx.size()
        assert t <= self.block_size, f"Cannot forward, model block size ({t}, {self.block_size}) is exhausted."
        x = self.drop(self.tok_emb(idx) + self.pos_emb[:, :t, :])
        if self.perceiver:
            x_input = x
            x = self.down_block(x)
        x = self.blocks(x)
        if self.perceiver:
            x = self.up_block(x, x_input)
        logits = self.head(self.ln_f(x))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=0)
        return logits, loss
