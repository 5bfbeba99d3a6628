#!/usr/bin/python3
"""scripts/torch_char_lm.py [--minutes M] [--text FILE] [--out DIR] [--compare DIR] ...

The PyTorch twin of examples/char_lm.cpp --model lstm, for the README's side-by-side validation
bits per character (not part of the test suite; needs Debian's python3-torch: apt-get install
python3-torch). Everything but the random draws is the example's:

  data:     Debian's fortunes (the files of /usr/share/games/fortunes without the .dat and .u8
            suffixes, regular files, sorted by name, concatenated) or --text FILE, read as bytes;
            --max-chars keeps the first N; the vocabulary is the distinct bytes in increasing order;
            the split cuts the ids into 100 equal pieces (the last takes the remainder) and holds
            out every 10th (pieces 9, 19, ..., 99) as validation (data::split_text)
  batches:  the training ids as N = 32 contiguous streams of S = (n - 1) // N inputs, read in chunks
            of L = 64 (the last one shorter), the targets one position further (data::StreamBatches);
            the LSTM state carried from chunk to chunk and detached (truncated BPTT), reset at
            every pass
  model:    Embedding(V, 64) -> LSTM(64, 128, 2 layers, batch_first) -> Linear(128, V); float32
  training: softmax cross entropy on every next character, Adam (betas 0.9, 0.999, eps 1e-8),
            gradient clipping at global norm 1, lr 0.005 with a linear warm-up over 100 steps and
            a cosine to lr / 10 over the run's progress (the largest of the fractions of --minutes,
            --epochs and --steps done), as the example
  eval:     every 200 steps and at the end of every pass: bits per character on the validation
            text read as N streams in chunks of L with the state carried; the clock (--minutes)
            counts training only, by default the process's CPU time (--clock cpu), as the
            example's

Initial weights are torch's own (uniform(-1/sqrt(H), 1/sqrt(H)) for the LSTM, as xgrad's
nn::LSTM; the Linear's weight N(0, 1 / H) and bias 0, as the example's Init::xavier). It prints every evaluation,
writes OUT/metrics.csv and OUT/summary.csv with the example's columns, and with --compare DIR
(an examples/char_lm --out directory) prints both final validation numbers and whether xgrad's is
no higher than PyTorch's. Run both single-threaded on a quiet machine: OPENBLAS_NUM_THREADS=1 for
the example, --threads 1 (the default) here.
"""
import argparse
import csv
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
FORTUNES = "/usr/share/games/fortunes"


def load_text(args):
    if args.text:
        data = Path(args.text).read_bytes()
        if not data:
            sys.exit(f"torch_char_lm: text file {args.text}: empty")
        source = args.text
    else:
        names = sorted(n for n in os.listdir(FORTUNES)
                       if not n.endswith((".dat", ".u8")) and os.path.isfile(os.path.join(FORTUNES, n)))
        if not names:
            sys.exit(f"torch_char_lm: no fortune text file in {FORTUNES} (install Debian's fortunes package)")
        data = b"".join(Path(FORTUNES, n).read_bytes() for n in names)
        source = FORTUNES
    if args.max_chars:
        data = data[:args.max_chars]
    return data, source


def split_text(ids, blocks=100, every=10):
    piece = len(ids) // blocks
    train, val = [], []
    for b in range(blocks):
        start = b * piece
        stop = len(ids) if b + 1 == blocks else start + piece
        (val if (b + 1) % every == 0 else train).append(ids[start:stop])
    return np.concatenate(train), np.concatenate(val)


def baselines(train, val, vocab):
    uni = np.bincount(train, minlength=vocab).astype(np.float64)
    big = np.zeros((vocab, vocab))
    np.add.at(big, (train[:-1], train[1:]), 1)
    p_uni = (uni + 1) / (len(train) + vocab)
    p_big = (big + 1) / (big.sum(axis=1, keepdims=True) + vocab)
    t = val[1:]
    return -np.mean(np.log2(p_uni[t])), -np.mean(np.log2(p_big[val[:-1], t]))


class Streams:
    """data::StreamBatches: n streams of S inputs, chunks of `length`."""

    def __init__(self, ids, n, length):
        self.ids, self.n, self.length = ids, n, length
        self.stream = (len(ids) - 1) // n
        if self.stream == 0:
            sys.exit(f"torch_char_lm: {len(ids)} ids cannot make {n} streams")
        idx = np.arange(n)[:, None] * self.stream
        self.x = torch.from_numpy(ids[idx + np.arange(self.stream)[None, :]].astype(np.int64))
        self.y = torch.from_numpy(ids[idx + 1 + np.arange(self.stream)[None, :]].astype(np.int64))

    def __len__(self):
        return (self.stream + self.length - 1) // self.length

    def targets(self):
        return self.n * self.stream

    def __getitem__(self, k):
        s = k * self.length
        e = min(s + self.length, self.stream)
        return self.x[:, s:e], self.y[:, s:e]


class LstmLM(nn.Module):
    def __init__(self, vocab, embed, hidden, layers):
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        self.lstm = nn.LSTM(embed, hidden, layers, batch_first=True)
        self.head = nn.Linear(hidden, vocab)
        nn.init.normal_(self.head.weight, std=1 / math.sqrt(hidden))  # xgrad's Init::xavier: N(0, 1 / fan_in)
        nn.init.zeros_(self.head.bias)

    def forward(self, x, state=None):
        out, state = self.lstm(self.embed(x), state)
        return self.head(out), state


def evaluate(model, streams):
    model.eval()
    nats, state = 0.0, None
    with torch.no_grad():
        for k in range(len(streams)):
            x, y = streams[k]
            logits, state = model(x, state)
            nats += nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1),
                                                reduction="sum").item()
    model.train()
    return nats / streams.targets() / math.log(2)


def scheduled_lr(base, step, warmup, progress):
    warm = min(1.0, (step + 1) / warmup) if warmup else 1.0
    p = min(max(progress, 0.0), 1.0)
    return base * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--text", help="a UTF-8 or ASCII text file (default: Debian's fortunes)")
    ap.add_argument("--max-chars", type=int, default=0, help="use only the first N bytes (default all)")
    ap.add_argument("--minutes", type=float, default=10.0, help="training time budget, evaluations excluded (default 10)")
    ap.add_argument("--epochs", type=int, default=0, help="stop after N passes (default: no limit)")
    ap.add_argument("--steps", type=int, default=0, help="stop after N steps (default: no limit)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=64)
    ap.add_argument("--embed", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--lr", type=float, default=0.005)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--eval-every", type=int, default=200)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--clock", choices=["cpu", "wall"], default="cpu",
                    help="what --minutes counts: the process's CPU time (default, as the example's) or wall time")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    ap.add_argument("--out", default=str(ROOT / "out" / "torch_char_lm"))
    ap.add_argument("--compare", help="an examples/char_lm --out directory: compare its summary.csv")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    data, source = load_text(args)
    symbols = sorted(set(data))
    table = np.full(256, -1, dtype=np.int64)
    table[symbols] = np.arange(len(symbols))
    ids = table[np.frombuffer(data, dtype=np.uint8)]
    vocab = len(symbols)
    train_ids, val_ids = split_text(ids)
    uni, big = baselines(train_ids, val_ids, vocab)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); text: {source} ({len(data)} bytes, "
          f"{vocab} symbols): {len(train_ids)} training, {len(val_ids)} validation characters")
    print(f"baselines on the validation text: unigram {uni:.4f}, bigram {big:.4f} bits per character")

    train = Streams(train_ids, args.batch_size, args.seq_len)
    val = Streams(val_ids, args.batch_size, args.seq_len)
    model = LstmLM(vocab, args.embed, args.hidden, args.layers)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.999), eps=1e-8)
    budget = 60 * args.minutes
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    step = epoch = chunk = 0
    seconds = 0.0
    history = []
    period_nats, period_steps = 0.0, 0
    state = None

    def progress():
        p = seconds / budget
        if args.steps:
            p = max(p, step / args.steps)
        if args.epochs:
            p = max(p, (epoch + chunk / len(train)) / args.epochs)
        return p

    def done():
        return seconds >= budget or (args.steps and step >= args.steps) or (args.epochs and epoch >= args.epochs)

    with open(out / "metrics.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step", "epoch", "minutes", "lr", "train_bpc", "val_bpc", "unigram_bpc", "bigram_bpc"])
        while not done():
            if chunk == 0:
                state = None
            t0 = clock()
            x, y = train[chunk]
            lr = scheduled_lr(args.lr, step, args.warmup, progress())
            for g in opt.param_groups:
                g["lr"] = lr
            logits, state = model(x, state)
            loss = nn.functional.cross_entropy(logits.reshape(-1, vocab), y.reshape(-1))
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            opt.step()
            state = tuple(s.detach() for s in state)
            period_nats += loss.item()
            period_steps += 1
            step += 1
            chunk += 1
            if chunk == len(train):
                chunk = 0
                epoch += 1
            seconds += clock() - t0
            if step % args.eval_every == 0 or chunk == 0 or done():
                v = evaluate(model, val)
                r = [step, epoch + chunk / len(train), seconds / 60, lr, period_nats / period_steps / math.log(2), v]
                period_nats, period_steps = 0.0, 0
                history.append(r)
                w.writerow(r + [uni, big])
                f.flush()
                print(f"step {step:6d}  epoch {r[1]:6.3f}  {r[2]:6.2f} min  lr {lr:.2e}  train {r[4]:.4f}  "
                      f"validation {v:.4f} bits per character", flush=True)
    last = history[-1]
    best = min(r[5] for r in history)
    ms = 1000 * seconds / max(step, 1)
    print(f"final validation: {last[5]:.4f} bits per character (best {best:.4f}) after {step} steps, "
          f"{last[1]:.3f} epochs, {seconds / 60:.2f} training minutes ({ms:.1f} ms per step)")
    with open(out / "summary.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["model", "steps", "epochs", "training_minutes", "ms_per_step", "batch", "seq_len", "val_bpc",
                    "best_val_bpc", "unigram_bpc", "bigram_bpc", "torch", "threads"])
        w.writerow(["lstm", step, last[1], seconds / 60, ms, args.batch_size, args.seq_len, last[5], best, uni, big,
                    torch.__version__, torch.get_num_threads()])
    if args.compare:
        with open(Path(args.compare) / "summary.csv") as f:
            row = next(csv.DictReader(f))
        xg = float(row["val_bpc"])
        print(f"xgrad: {xg:.4f} bits per character after {float(row['training_minutes']):.2f} minutes "
              f"({row['steps']} steps); PyTorch: {last[5]:.4f} after {seconds / 60:.2f} minutes ({step} steps)")
        print(f"xgrad's validation loss is {'no higher than' if xg <= last[5] else 'HIGHER than'} PyTorch's "
              f"({xg - last[5]:+.4f} bits per character)")


if __name__ == "__main__":
    main()
