# %% [markdown]
# # A2S3: Finetuning RoBERTa on SST-2 with HuggingFace
#
# CSE 447/517, Assignment 2, §3. Complete the code marked `TODO`, answer the questions marked
# `Q` in your report, then download this notebook as Python (File > Download > Download .py)
# and submit `A2S3.py`. The grader checks `SST2Dataset`, `collate_fn`, `compute_accuracy`,
# `train_one_epoch` and `evaluate` offline with a tiny RoBERTa; it never runs `main()`.
#
# ## Step 0: Preparation

# %%
!pip install torch transformers datasets tqdm gdown==v4.6.3
!mkdir -p checkpoints

# %%
import os
import random
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.notebook import tqdm
from transformers import AutoTokenizer, RobertaForSequenceClassification
from datasets import load_dataset

def set_seed(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)

set_seed(447)

# %% [markdown]
# ## Step 1: Defining PyTorch Dataset and Dataloader

# %%
@dataclass
class SST2Example:
    """A single example of SST-2: a sentence and its label (1 positive, 0 negative)."""
    text: str
    label: int

    @classmethod
    def from_dict(cls, data: dict):
        return cls(text=data["text"], label=data["label"])


class SST2Dataset(Dataset):
    """A PyTorch Dataset of SST2Example for a list of raw examples."""

    tokenizer = None

    def __init__(self, tokenizer, raw_data_list):
        SST2Dataset.tokenizer = tokenizer
        self.sample_list = [SST2Example.from_dict(data) for data in raw_data_list]

    def __len__(self):
        # TODO: the number of examples
        pass

    def __getitem__(self, idx):
        # TODO: the SST2Example at position idx
        pass

    def __iter__(self):
        # TODO: yield the examples, in order
        pass

    @staticmethod
    def collate_fn(batched_samples):
        """Batch a list of SST2Example into the model's inputs and labels."""
        # TODO: encode the texts with SST2Dataset.tokenizer (padding=True, max_length=512,
        # truncation=True, return_tensors="pt") and the labels as a torch.LongTensor;
        # return {"text_encoding": ..., "label_encoding": ...}
        pass

# %% [markdown]
# Q1.1, Q1.2: in your report.
#
# ## Step 2: Load Data

# %%
model_name = "roberta-base"
tokenizer = AutoTokenizer.from_pretrained(model_name)

dataset = load_dataset("gpt3mix/sst2")
train_raw_data, validation_raw_data, test_raw_data = dataset["train"], dataset["validation"], dataset["test"]

train_dataset = SST2Dataset(tokenizer, train_raw_data)
validation_dataset = SST2Dataset(tokenizer, validation_raw_data)
test_dataset = SST2Dataset(tokenizer, test_raw_data)

print(len(train_dataset), len(validation_dataset), len(test_dataset))

# %% [markdown]
# ## Step 3: Training and Evaluation

# %%
def compute_accuracy(predictions, labels):
    """The fraction of predictions equal to their label, as a Python float."""
    # TODO
    pass


def train_one_epoch(model, dataloader, optimizer, epoch):
    # TODO: put the model in training mode
    with tqdm(dataloader, desc=f"Train Ep {epoch}", total=len(dataloader)) as tq:
        for batch in tq:
            # TODO: move the encodings to model.device, compute
            # loss = model(**text_encoding, labels=labels).loss, then zero the gradients,
            # backpropagate and take an optimizer step
            loss = None
            tq.set_postfix({"loss": loss})


def evaluate(model, dataloader):
    # TODO: put the model in evaluation mode and do not track gradients
    predictions, labels = [], []
    with tqdm(dataloader, desc="Eval", total=len(dataloader)) as tq:
        for batch in tq:
            # TODO: predict the argmax of the logits for the batch; keep the predictions
            # and the labels
            pass
    # TODO: return compute_accuracy(predictions, labels)
    return None

# %% [markdown]
# Q3.1 - Q3.3: in your report.
#
# ## Step 4: Main Training Loop

# %%
def main():
    batch_size = 64
    learning_rate = 5e-5
    num_epochs = 10
    device = torch.device("cuda")

    model = RobertaForSequenceClassification.from_pretrained(model_name, num_labels=2).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, eps=1e-8)
    train_loader = DataLoader(train_dataset, batch_size=batch_size, shuffle=True,
                              collate_fn=SST2Dataset.collate_fn, num_workers=2)
    validation_loader = DataLoader(validation_dataset, batch_size=batch_size, shuffle=False,
                                   collate_fn=SST2Dataset.collate_fn, num_workers=2)
    best_accuracy = 0.0
    for epoch in range(num_epochs):
        train_one_epoch(model, train_loader, optimizer, epoch)
        train_accuracy = evaluate(model, train_loader)
        validation_accuracy = evaluate(model, validation_loader)
        print(f"epoch {epoch}: train accuracy {train_accuracy:.4f}, validation accuracy {validation_accuracy:.4f}")
        if validation_accuracy > best_accuracy:
            best_accuracy = validation_accuracy
            os.makedirs("checkpoints", exist_ok=True)
            model.save_pretrained("checkpoints/best")
    print(f"best validation accuracy: {best_accuracy:.4f}")

main()

# %% [markdown]
# ## Step 5: Testing the Final Model

# %%
best_model = RobertaForSequenceClassification.from_pretrained("checkpoints/best").to("cuda")
test_loader = DataLoader(test_dataset, batch_size=64, shuffle=False, collate_fn=SST2Dataset.collate_fn)
test_accuracy = evaluate(best_model, test_loader)
print(f"test accuracy: {test_accuracy:.4f}")
