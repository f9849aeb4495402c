"""
Starter code: an LSTM language model over GPT BPE tokens (Wikitext-2).

embedding -> nn.LSTM -> 2-layer MLP classifier whose last weight is tied to the
(frozen by default) embedding matrix -> log-softmax over the vocabulary.
Shapes: B = batch, T = sequence length, V = vocabulary size, E = embedding
size, H = hidden size, L = num_layers. Token id 0 is padding.
"""

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class LSTM(nn.Module):

    def __init__(self, vocabulary_size=40479, embedding_size=768, hidden_size=512,
                 num_layers=1, learn_embeddings=False, _embedding_weight=None):
        super(LSTM, self).__init__()
        self.vocabulary_size = vocabulary_size
        self.embedding_size = embedding_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.learn_embeddings = learn_embeddings

        self.embedding = nn.Embedding(
            vocabulary_size, embedding_size, padding_idx=0, _weight=_embedding_weight
        )
        self.lstm = nn.LSTM(
            embedding_size, hidden_size, num_layers=num_layers, batch_first=True
        )
        self.classifier = nn.Sequential(
            nn.Linear(hidden_size, embedding_size),
            nn.ReLU(),
            nn.Linear(embedding_size, vocabulary_size, bias=False),
        )

        # tie the output projection to the token embeddings (as in GPT-1)
        self.classifier[2].weight = self.embedding.weight

        # the (tied) embeddings are frozen unless learn_embeddings is True
        self.embedding.requires_grad_(learn_embeddings)

    def forward(self, inputs, hidden_states):
        """inputs: Long (B, T); hidden_states: (h, c), each float (L, B, H).
        Returns log_probas float (B, T, V) (log-softmax over the vocabulary) and
        the final (h, c), each (L, B, H)."""
        # ==========================
        # TODO: Write your code here
        # Use self.embedding, self.lstm and self.classifier. Return the
        # log-probabilities (not the logits) and the final hidden states.
        # ==========================
        pass

    def loss(self, log_probas, targets, mask):
        """log_probas: float (B, T, V); targets: Long (B, T); mask: float (B, T)
        of 0/1 (0 = padding). Returns a scalar: each sequence's mean NLL over its
        valid tokens, then averaged over the batch. Inputs are not modified."""
        # ==========================
        # TODO: Write your code here
        # Mean negative log-likelihood of each sequence over its own valid
        # (mask == 1) tokens, then the mean over the mini-batch. Keep it
        # differentiable and do not modify targets or mask.
        # ==========================
        pass

    def initial_states(self, batch_size, device=None):
        """Zero (h, c), each float (L, batch_size, H), on `device`
        (default: the device of the model's parameters)."""
        if device is None:
            device = next(self.parameters()).device
        shape = (self.num_layers, batch_size, self.hidden_size)

        # a constant initial state, not a learnable parameter
        h_0 = torch.zeros(shape, dtype=torch.float, device=device)
        c_0 = torch.zeros(shape, dtype=torch.float, device=device)
        return (h_0, c_0)

    @classmethod
    def load_embeddings_from(cls, filename, hidden_size=512, num_layers=1,
                             learn_embeddings=False):
        """Build an LSTM whose embeddings come from the `tokens` array (V, E) of an npz file."""
        with open(filename, 'rb') as f:
            embeddings = np.load(f)
            weight = torch.from_numpy(embeddings['tokens'])

        vocabulary_size, embedding_size = weight.shape
        return cls(vocabulary_size, embedding_size, hidden_size, num_layers,
                   learn_embeddings, _embedding_weight=weight)
