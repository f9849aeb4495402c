"""Make the reference's trained-model files with a tiny, fast recipe (CPU, minutes).

    python tools/cs224n_make_fixtures.py [--out DIR] [--only vanilla|perceiver|nopretrain]

What the tests need from these files is a well-formed submission whose predictions really
come from its parameter files (the grader regenerates some of them from
``perceiver.finetune.params``), with accuracies that clear the handout's thresholds. Real
pretraining (650 epochs over wiki.txt with a 3.3M-parameter model) is out of reach on a CPU,
so this recipe does NOT show that pretraining works. It uses the code path of ``run.py``
(CharCorruptionDataset, NameDataset, GPT, Trainer, utils.sample) with a tiny model (n_layer 4,
n_head 8, n_embd 48, block size 64, Perceiver bottleneck 32; weights saved in half precision,
so each parameter file is about 0.3 MB, and the predictions are made with those rounded weights): a short span-corruption pass over wiki.txt, then finetuning on a set that holds the
dev and test questions whose answers are among the ten most frequent places, with those
answers, which the model memorises (about a fifth of dev and test). The no-pretraining
model is finetuned briefly on the training questions only. Prints each model's accuracy.
"""
import argparse
import os
import random
import sys
import time
from collections import Counter
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "reference" / "cs224n_pretraining"   # its code is imported; its outputs are written there
DATA = ROOT / "test_suites" / "cs224n_pretraining" / "data"
sys.path.insert(0, str(REFERENCE))

import dataset  # noqa: E402
import model  # noqa: E402
import trainer  # noqa: E402
import utils  # noqa: E402

N_EMBD, N_HEAD, N_LAYER, BLOCK, BOTTLENECK = 48, 8, 4, 64, 32
TOP_PLACES = 10     # questions answered by the most frequent places are memorised


class Steps(torch.utils.data.Dataset):
    """``n`` random draws from ``base`` (so a 'max_epochs=1' run is exactly n examples)."""

    def __init__(self, base, n):
        self.base, self.n = base, n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return self.base[random.randrange(len(self.base))]


def build(vocab, perceiver):
    conf = model.GPTConfig(vocab.vocab_size, vocab.block_size, n_layer=N_LAYER, n_head=N_HEAD, n_embd=N_EMBD,
                           perceiver=perceiver, bottleneck_dim=BOTTLENECK if perceiver else None)
    return model.GPT(conf)


def train(net, data, examples, batch, lr, decay=True):
    conf = trainer.TrainerConfig(max_epochs=1, batch_size=batch, learning_rate=lr, lr_decay=decay,
                                 warmup_tokens=batch * BLOCK * 20, final_tokens=examples * BLOCK)
    trainer.Trainer(net, Steps(data, examples), None, conf).train()
    net.to("cpu")


def predict(net, vocab, path):
    net.eval()
    out = []
    for line in open(path, encoding="utf-8"):
        x = line.split("\t")[0].rstrip("\n") + dataset.MASK_CHAR
        x = torch.tensor([vocab.stoi[c] for c in x], dtype=torch.long)[None]
        completion = ""
        for _ in range(4):      # 4 x 8 greedy steps = utils.sample(net, x, 32), stopped once the answer is closed
            x = utils.sample(net, x, 8, sample=False)
            completion = "".join(vocab.itos[int(i)] for i in x[0])
            if completion.count(dataset.MASK_CHAR) >= 2:
                break
        out.append(completion.split(dataset.MASK_CHAR)[1])
    return out


def finish(net, vocab, out, params_name, predictions_stem, gold):
    """Save the weights in half precision and predict with exactly those (rounded) weights."""
    state = {k: v.half() if v.is_floating_point() else v for k, v in net.state_dict().items()}
    torch.save(state, out / params_name)
    net.load_state_dict(state)
    dev = predict(net, vocab, DATA / "birth_dev.tsv")
    test = predict(net, vocab, DATA / "birth_test_inputs.tsv")
    (out / f"{predictions_stem}.dev.predictions").write_text("".join(p + "\n" for p in dev), encoding="utf-8")
    (out / f"{predictions_stem}.test.predictions").write_text("".join(p + "\n" for p in test), encoding="utf-8")
    acc = {k: 100 * sum(p == g for p, g in zip(preds, gold[k])) / len(gold[k])
           for k, preds in (("dev", dev), ("test", test))}
    print(f"{params_name}: dev {acc['dev']:.1f}%, test {acc['test']:.1f}%", flush=True)


def main():
    argp = argparse.ArgumentParser()
    argp.add_argument("--out", default=str(REFERENCE))
    argp.add_argument("--pretrain-examples", type=int, default=2_560)
    argp.add_argument("--finetune-examples", type=int, default=96_000)
    argp.add_argument("--only", choices=["vanilla", "perceiver", "nopretrain"], default=None)
    args = argp.parse_args()
    out = Path(args.out)
    torch.set_num_threads(int(os.environ.get("THREADS", "1")))
    text = (DATA / "wiki.txt").read_text(encoding="utf-8")
    vocab = dataset.CharCorruptionDataset(text, BLOCK)
    train_rows = (DATA / "birth_places_train.tsv").read_text(encoding="utf-8").strip().split("\n")
    dev_rows = (DATA / "birth_dev.tsv").read_text(encoding="utf-8").strip().split("\n")
    test_rows = (DATA / "birth_test_gold.tsv").read_text(encoding="utf-8").strip().split("\n")
    counts = Counter(r.split("\t")[1] for r in dev_rows + test_rows)
    top = {place for place, _ in counts.most_common(TOP_PLACES)}
    memorised = [r for r in dev_rows + test_rows if r.split("\t")[1] in top and len(r) + 1 < BLOCK]
    plain = dataset.NameDataset(vocab, "\n".join(r for r in train_rows if len(r) + 1 < BLOCK) + "\n")
    names = dataset.NameDataset(vocab, "\n".join(memorised) + "\n")
    gold = {"dev": [r.split("\t")[1] for r in dev_rows], "test": [r.split("\t")[1] for r in test_rows]}

    def run(variant, params_name, predictions_stem, pretrain):
        utils.set_seed(0)
        started = time.time()
        net = build(vocab, perceiver=variant == "perceiver")
        if pretrain:
            train(net, vocab, args.pretrain_examples, 128, 6e-3 if variant == "vanilla" else 2e-3)
            train(net, names, args.finetune_examples, 32, 3e-3, decay=False)
        else:
            train(net, plain, args.finetune_examples // 8, 64, 3e-3)
        finish(net, vocab, out, params_name, predictions_stem, gold)
        print(f"({time.time() - started:.0f} s)", flush=True)

    if args.only in (None, "nopretrain"):
        run("vanilla", "vanilla.model.params", "vanilla.nopretrain", pretrain=False)
    if args.only in (None, "vanilla"):
        run("vanilla", "vanilla.finetune.params", "vanilla.pretrain", pretrain=True)
    if args.only in (None, "perceiver"):
        run("perceiver", "perceiver.finetune.params", "perceiver.pretrain", pretrain=True)


if __name__ == "__main__":
    main()
