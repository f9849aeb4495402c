"""Datasets: name/birthplace questions (NameDataset) and span corruption (CharCorruptionDataset).

Run ``python dataset.py namedata`` or ``python dataset.py charcorruption`` to print examples.
"""
import argparse
import random

import torch
from torch.utils.data import Dataset

MASK_CHAR = "\u2047"   # the sentinel ⁇
PAD_CHAR = "\u25A1"    # the padding character □


class NameDataset(Dataset):
    """Questions "Where was X born?" and their answers, encoded with the pretraining vocabulary.

    ``x`` is ``question ⁇ answer ⁇ □...`` without its last character; ``y`` is PAD over the
    question (less one) and then the rest of the string shifted by one, so only the answer
    (and its closing ⁇) is predicted.
    """

    def __init__(self, pretraining_dataset, data):
        self.MASK_CHAR = MASK_CHAR
        self.PAD_CHAR = PAD_CHAR
        self.itos = pretraining_dataset.itos
        self.stoi = pretraining_dataset.stoi
        self.block_size = pretraining_dataset.block_size
        self.data = list(data.encode("utf-8").decode("ascii", errors="ignore").split("\n"))

    def __len__(self):
        return len(self.data) - 1      # the file ends with a newline

    def __getitem__(self, idx):
        inp, oup = self.data[idx].split("\t")
        x = inp + self.MASK_CHAR + oup + self.MASK_CHAR
        x = x + self.PAD_CHAR * (self.block_size - len(x))
        y = self.PAD_CHAR * (len(inp) - 1) + x[len(inp):]
        x = torch.tensor([self.stoi[c] for c in x[:-1]], dtype=torch.long)
        y = torch.tensor([self.stoi[c] for c in y], dtype=torch.long)
        return x, y


class CharCorruptionDataset(Dataset):
    """Span corruption on the documents (lines) of a corpus, for pretraining.

    Vocabulary: PAD (id 0), MASK (id 1), then the sorted characters of ``data``.
    """

    def __init__(self, data, block_size):
        self.MASK_CHAR = MASK_CHAR
        self.PAD_CHAR = PAD_CHAR
        chars = sorted(set(data))
        assert MASK_CHAR not in chars
        assert PAD_CHAR not in chars
        chars = [PAD_CHAR, MASK_CHAR] + chars
        self.stoi = {ch: i for i, ch in enumerate(chars)}
        self.itos = {i: ch for i, ch in enumerate(chars)}
        print(f"data has {len(data)} characters, {len(chars)} unique.")
        self.block_size = block_size
        self.vocab_size = len(chars)
        self.data = data.split("\n")

    def __len__(self):
        return len(self.data)

    def __getitem__(self, idx):
        # 1. Truncate the document to a random length in [4, block_size*7/8] (a prefix).
        document = self.data[idx][:random.randint(4, int(self.block_size * 7 / 8))]
        # 2. Pick a masked span: random length averaging a quarter of the text, random start.
        masked_len = random.randint(0, len(document) // 2)
        start = random.randint(0, len(document) - masked_len)
        prefix = document[:start]
        masked = document[start:start + masked_len]
        suffix = document[start + masked_len:]
        # 3. prefix ⁇ suffix ⁇ masked, padded to block_size.
        text = prefix + MASK_CHAR + suffix + MASK_CHAR + masked
        text = text + PAD_CHAR * (self.block_size - len(text))
        # 4. Inputs and targets, shifted by one.
        x = torch.tensor([self.stoi[c] for c in text[:-1]], dtype=torch.long)
        y = torch.tensor([self.stoi[c] for c in text[1:]], dtype=torch.long)
        return x, y


if __name__ == "__main__":
    argp = argparse.ArgumentParser()
    argp.add_argument("dataset_type", choices=["namedata", "charcorruption"])
    args = argp.parse_args()
    corruption_dataset = CharCorruptionDataset(open("wiki.txt", encoding="utf-8").read(), 128)
    if args.dataset_type == "namedata":
        dataset = NameDataset(corruption_dataset, open("birth_places_train.tsv", encoding="utf-8").read())
    else:
        dataset = corruption_dataset
    for _, example in zip(range(4), dataset):
        x, y = example
        print("x:", "".join(dataset.itos[int(c)] for c in x))
        print("y:", "".join(dataset.itos[int(c)] for c in y))
