"""A simple training loop (minGPT's Trainer): AdamW, optional linear-warmup cosine decay."""
import math

import torch
from torch.utils.data.dataloader import DataLoader


class TrainerConfig:
    max_epochs = 10
    batch_size = 64
    learning_rate = 3e-4
    betas = (0.9, 0.95)
    grad_norm_clip = 1.0
    weight_decay = 0.1          # only applied to matmul weights
    lr_decay = False
    warmup_tokens = 375e6
    final_tokens = 260e9
    ckpt_path = None
    num_workers = 0
    writer = None

    def __init__(self, **kwargs):
        for k, v in kwargs.items():
            setattr(self, k, v)


class Trainer:

    def __init__(self, model, train_dataset, test_dataset, config):
        self.model = model
        self.train_dataset = train_dataset
        self.test_dataset = test_dataset
        self.config = config
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model = self.model.to(self.device)

    def save_checkpoint(self):
        if self.config.ckpt_path is not None:
            torch.save(self.model.state_dict(), self.config.ckpt_path)

    def _optimizer(self):
        decay, no_decay = [], []
        for name, p in self.model.named_parameters():
            (decay if name.endswith("weight") and p.dim() >= 2 else no_decay).append(p)
        groups = [{"params": decay, "weight_decay": self.config.weight_decay},
                  {"params": no_decay, "weight_decay": 0.0}]
        return torch.optim.AdamW(groups, lr=self.config.learning_rate, betas=self.config.betas)

    def train(self):
        model, config = self.model, self.config
        optimizer = self._optimizer()
        tokens = 0
        step = 0
        for epoch in range(config.max_epochs):
            model.train()
            loader = DataLoader(self.train_dataset, shuffle=True, pin_memory=True,
                                batch_size=config.batch_size, num_workers=config.num_workers)
            losses = []
            for x, y in loader:
                x, y = x.to(self.device), y.to(self.device)
                _, loss = model(x, y)
                losses.append(loss.item())
                model.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_norm_clip)
                optimizer.step()
                lr = config.learning_rate
                if config.lr_decay:
                    tokens += int((y >= 0).sum())
                    if tokens < config.warmup_tokens:
                        mult = tokens / max(1, config.warmup_tokens)
                    else:
                        progress = (tokens - config.warmup_tokens) / max(1, config.final_tokens - config.warmup_tokens)
                        mult = max(0.1, 0.5 * (1.0 + math.cos(math.pi * progress)))
                    lr = config.learning_rate * mult
                    for group in optimizer.param_groups:
                        group["lr"] = lr
                if config.writer is not None:
                    config.writer.add_scalar("train/loss", loss.item(), step)
                    config.writer.add_scalar("train/lr", lr, step)
                step += 1
            print(f"epoch {epoch + 1}: train loss {sum(losses) / max(1, len(losses)):.4f}")
            self.save_checkpoint()
