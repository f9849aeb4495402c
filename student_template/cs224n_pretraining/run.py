"""Pretrain, finetune or evaluate a vanilla or Perceiver GPT on the birthplace task."""
import argparse
import random

import torch
from tqdm import tqdm

import dataset
import model
import trainer
import utils

argp = argparse.ArgumentParser()
argp.add_argument("function", help="Choose pretrain, finetune, or evaluate")
argp.add_argument("variant", help="Choose vanilla or perceiver")
argp.add_argument("--bottleneck_dim", type=int, default=32)
argp.add_argument("pretrain_corpus_path", default=None)
argp.add_argument("--reading_params_path", default=None)
argp.add_argument("--writing_params_path", default=None)
argp.add_argument("--finetune_corpus_path", default=None)
argp.add_argument("--eval_corpus_path", default=None)
argp.add_argument("--outputs_path", default=None)
argp.add_argument("--pretrain_lr", default=6e-3, type=float)
argp.add_argument("--finetune_lr", default=6e-4, type=float)
argp.add_argument("--tb_expt_name", default="run")
args = argp.parse_args()

device = "cuda" if torch.cuda.is_available() else "cpu"
random.seed(0)
torch.manual_seed(0)

block_size = 128
text = open(args.pretrain_corpus_path, encoding="utf-8").read()
pretrain_dataset = dataset.CharCorruptionDataset(text, block_size)

mconf = model.GPTConfig(pretrain_dataset.vocab_size, pretrain_dataset.block_size,
                        n_layer=4, n_head=8, n_embd=256)

# TODO [part c, g]: build the model (bound to the name `model`): model.GPT(mconf) for
# "vanilla"; for "perceiver", set mconf.perceiver = True and mconf.bottleneck_dim first.
model = None

if args.function == "pretrain":
    assert args.writing_params_path is not None
    # TODO [part f]: pretrain on pretrain_dataset with trainer.Trainer: max_epochs=650,
    # batch_size=128, learning_rate=args.pretrain_lr, lr_decay=True, warmup_tokens=512*20,
    # final_tokens=650*len(pretrain_dataset)*block_size; then save the state_dict.
    raise NotImplementedError
elif args.function == "finetune":
    assert args.writing_params_path is not None and args.finetune_corpus_path is not None
    # TODO [part c, f]: finetune on NameDataset(pretrain_dataset, <finetune corpus text>):
    # from scratch, 75 epochs; after loading args.reading_params_path, 10 epochs. batch_size=256,
    # learning_rate=args.finetune_lr, lr_decay=True, warmup_tokens=512*20,
    # final_tokens=200*len(pretrain_dataset)*block_size; then save the state_dict.
    raise NotImplementedError
elif args.function == "evaluate":
    assert args.outputs_path is not None and args.reading_params_path is not None
    assert args.eval_corpus_path is not None
    model.load_state_dict(torch.load(args.reading_params_path, map_location=device, weights_only=True))
    correct = total = 0
    predictions = []
    with open(args.outputs_path, "w", encoding="utf-8") as fout:
        for line in tqdm(open(args.eval_corpus_path, encoding="utf-8")):
            x = line.split("\t")[0] + "\u2047"
            x = torch.tensor([pretrain_dataset.stoi[s] for s in x], dtype=torch.long)[None, ...].to(device)
            pred = utils.sample(model, x, 32, sample=False)[0]
            completion = "".join(pretrain_dataset.itos[int(i)] for i in pred)
            pred = completion.split("\u2047")[1]
            predictions.append(pred)
            fout.write(pred + "\n")
        total, correct = utils.evaluate_places(args.eval_corpus_path, predictions)
    if total > 0:
        print(f"Correct: {correct} out of {total}: {correct / total * 100}%")
    else:
        print(f"Predictions written to {args.outputs_path}; no targets provided")
