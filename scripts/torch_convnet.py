#!/usr/bin/python3
"""scripts/torch_convnet.py [--model simple|deep] [--epochs N] [--quick] [--out DIR] ...

The PyTorch twin of examples/convnet.cpp, for the README's side-by-side accuracies (not part of
the test suite; needs Debian's python3-torch: apt-get install python3-torch). It trains the book's
SimpleConvNet or DeepConvNet the same way as the example:

  simple: conv 30 filters 5x5 (stride 1, pad 0) -> ReLU -> max pool 2x2 -> Linear 100 -> ReLU
          -> Linear 10; every weight N(0, 0.01^2) (the book's weight_init_std), biases 0
  deep:   [conv3x3 16, ReLU, conv3x3 16, ReLU, max pool 2], [conv3x3 32, ReLU, conv3x3 32 (pad 2),
          ReLU, max pool 2], [conv3x3 64, ReLU, conv3x3 64, ReLU, max pool 2], Linear 50, ReLU,
          dropout 0.5, Linear 10, dropout 0.5; pad 1 elsewhere; He init N(0, 2/fan_in), biases 0
  both:   Adam lr 0.001 (betas 0.9, 0.999, eps 1e-8, as xgrad's); simple: batch 100, 20 epochs,
          constant rate, no augmentation (the book's); deep: batch 50, 50 epochs, --schedule
          cosine, --augment flip-shift --shift 1 (the example's defaults, the best settings found:
          0.9325); shuffled epochs (every training image once per epoch, the last batch partial), softmax
          cross entropy; float32; images (N, 1, 28, 28) with pixels / 255 in [0, 1]
  options as the example's: --schedule cosine (CosineAnnealingLR, T_max = epochs, stepped per
          epoch), --augment flip | flip-shift (each training image flipped left-right with
          probability 1/2, and moved by up to --shift pixels (default 1) with zeros coming in:
          padded by the shift and a 28x28 window taken at a random offset, torchvision's
          RandomCrop(28, padding=shift)),
          --batch-size, --lr, --weight-decay (Adam's L2 weight_decay, added to the gradient)

The data is the example's: the four gzip IDX files of Debian's dataset-fashion-mnist
(/usr/share/datasets/fashion-mnist, xgrad's data::default_data_dir()), or --data DIR. The random
draws (init, shuffles, dropout masks) are torch's, so the numbers agree with xgrad's in
distribution, not digit for digit. After every epoch it prints and writes (OUT/metrics.csv) the
mean training loss, the accuracy on the first --train-eval-samples training images and on the
test set, as the example's metrics.csv; OUT/summary.csv holds the final numbers. With --compare
DIR (an examples/convnet --out directory) it prints both final test accuracies and whether they
are within 0.5 points of each other.
"""
import argparse
import csv
import gzip
import math
import os
import struct
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    zero, dtype, dims = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != 0x08:
        sys.exit(f"torch_convnet: {path} is not an IDX file of unsigned bytes")
    shape = struct.unpack(">" + "I" * dims, raw[4:4 + 4 * dims])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def find(directory, stem):
    """The uncompressed file wins when both exist, as data::load_mnist_dir."""
    for name in (stem, stem + ".gz"):
        p = Path(directory) / name
        if p.exists():
            return p
    sys.exit(f"torch_convnet: no {stem}[.gz] in {directory}")


def load(directory, prefix):
    images = read_idx(find(directory, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(find(directory, f"{prefix}-labels-idx1-ubyte"))
    x = torch.from_numpy(images.astype(np.float32) / np.float32(255)).reshape(len(images), 1, *images.shape[1:])
    return x, torch.from_numpy(labels.astype(np.int64))


def simple_convnet(side, classes):
    flat = 30 * ((side - 4) // 2) ** 2
    net = nn.Sequential(
        nn.Conv2d(1, 30, 5), nn.ReLU(), nn.MaxPool2d(2, 2), nn.Flatten(),
        nn.Linear(flat, 100), nn.ReLU(), nn.Linear(100, classes))
    for m in net:
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)
    return net, flat


def deep_convnet(side, classes):
    def conv(i, o, pad):
        return [nn.Conv2d(i, o, 3, padding=pad), nn.ReLU()]
    s = ((side // 2 + 2) // 2) // 2
    flat = 64 * s * s
    net = nn.Sequential(
        *conv(1, 16, 1), *conv(16, 16, 1), nn.MaxPool2d(2, 2),
        *conv(16, 32, 1), *conv(32, 32, 2), nn.MaxPool2d(2, 2),
        *conv(32, 64, 1), *conv(64, 64, 1), nn.MaxPool2d(2, 2), nn.Flatten(),
        nn.Linear(flat, 50), nn.ReLU(), nn.Dropout(0.5), nn.Linear(50, classes), nn.Dropout(0.5))
    for m in net:
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            fan_in = m.weight[0].numel()  # in_channels * kh * kw, or in_features
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_in))
            nn.init.zeros_(m.bias)
    return net, flat


@torch.no_grad()
def accuracy(net, x, y, batch=1000):
    net.eval()
    correct = 0
    for i in range(0, len(y), batch):
        correct += (net(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum().item()
    net.train()
    return correct / max(len(y), 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=["simple", "deep"], default="simple")
    ap.add_argument("--epochs", type=int, help="epochs (default 20 simple, 50 deep; --quick: 2 simple, 3 deep)")
    ap.add_argument("--quick", action="store_true",
                    help="the example's --quick sizes: 2000 (simple) or 1000 (deep) training images, 500 test")
    ap.add_argument("--batch-size", type=int, help="default 100 simple, 50 deep")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--weight-decay", type=float, default=0.0, help="Adam's weight_decay (L2, as the example's)")
    ap.add_argument("--schedule", choices=["constant", "cosine"], help="default constant simple, cosine deep")
    ap.add_argument("--augment", choices=["none", "flip", "flip-shift"], help="default none simple, flip-shift deep")
    ap.add_argument("--shift", type=int, help="the largest shift of --augment flip-shift, in pixels (default 1)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--data", default=DEFAULT_DATA, help=f"directory of the four MNIST IDX files (default {DEFAULT_DATA})")
    ap.add_argument("--train-samples", type=int, help="use only the first N training images")
    ap.add_argument("--test-samples", type=int, help="use only the first N test images")
    ap.add_argument("--train-eval-samples", type=int, default=10000,
                    help="the per-epoch train accuracy is measured on the first N training images (0: all)")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1, as the example's runs)")
    ap.add_argument("--out", help="output directory (default out/torch_convnet_<model>)")
    ap.add_argument("--compare", metavar="DIR",
                    help="the --out directory of an examples/convnet run of the same settings: prints both final test "
                         "accuracies and whether they are within 0.5 points (the issue's parity bar)")
    args = ap.parse_args()
    # the example's defaults: the book's for simple, for deep the best settings found
    simple = args.model == "simple"
    for name, value in (("batch_size", 100 if simple else 50), ("schedule", "constant" if simple else "cosine"),
                        ("augment", "none" if simple else "flip-shift")):
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.shift is not None and args.augment != "flip-shift":
        sys.exit(f"torch_convnet: --shift needs --augment flip-shift (the augmentation is {args.augment})")
    if args.shift is None:
        args.shift = 1
    for name in ("epochs", "batch_size", "train_samples", "test_samples", "threads", "shift"):
        v = getattr(args, name)
        if v is not None and v < 1:
            sys.exit(f"torch_convnet: --{name.replace('_', '-')} must be at least 1")

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    out = Path(args.out) if args.out else ROOT / "out" / f"torch_convnet_{args.model}"
    out.mkdir(parents=True, exist_ok=True)

    x_train, y_train = load(args.data, "train")
    x_test, y_test = load(args.data, "t10k")
    n_train = args.train_samples or (({"simple": 2000, "deep": 1000}[args.model]) if args.quick else len(y_train))
    n_test = args.test_samples or (500 if args.quick else len(y_test))
    x_train, y_train = x_train[:n_train], y_train[:n_train]
    x_test, y_test = x_test[:n_test], y_test[:n_test]
    n_eval = min(args.train_eval_samples or len(y_train), len(y_train))
    epochs = args.epochs or (({"simple": 2, "deep": 3}[args.model]) if args.quick else (20 if simple else 50))
    batch = min(args.batch_size, len(y_train))
    side = x_train.shape[-1]
    classes = int(max(y_train.max(), y_test.max())) + 1

    net, flat = (simple_convnet if args.model == "simple" else deep_convnet)(side, classes)
    with torch.no_grad():
        got = net[: [i for i, m in enumerate(net) if isinstance(m, nn.Flatten)][0] + 1](x_train[:1]).shape[1]
    assert got == flat, f"the convolutions give {got} features, the book's arithmetic {flat}"
    opt = torch.optim.Adam(net.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs) if args.schedule == "cosine" else None
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); data {args.data}: {len(y_train)} train, "
          f"{len(y_test)} test images of {side}x{side}; model {args.model} ({flat} features into the first Linear, "
          f"{sum(p.numel() for p in net.parameters())} parameters); Adam lr {args.lr}, weight decay {args.weight_decay}, "
          f"batch {batch}, {epochs} epochs, schedule {args.schedule}, augment {args.augment}",
          flush=True)

    shift = args.shift if args.augment == "flip-shift" else 0
    rows = []
    total = 0.0
    for epoch in range(1, epochs + 1):
        t0 = time.time()
        order = torch.randperm(len(y_train))
        losses = []
        for i in range(0, len(order), batch):
            idx = order[i:i + batch]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(augmented(x_train[idx], args.augment, shift)), y_train[idx])
            loss.backward()
            opt.step()
            losses.append(loss.item())
        if schedule:
            schedule.step()
        train_seconds = time.time() - t0
        train_acc = accuracy(net, x_train[:n_eval], y_train[:n_eval])
        test_acc = accuracy(net, x_test, y_test)
        seconds = time.time() - t0
        total += seconds
        rows.append({"epoch": epoch, "train_loss": sum(losses) / len(losses), "train_sample_accuracy": train_acc,
                     "test_accuracy": test_acc, "training_seconds": train_seconds, "seconds": seconds})
        print(f"epoch {epoch:>3}/{epochs}  loss {rows[-1]['train_loss']:.4f}  train_sample_accuracy {train_acc:.4f}  "
              f"test_accuracy {test_acc:.4f}  {train_seconds:.1f}s training, {seconds:.1f}s", flush=True)
        with open(out / "metrics.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)

    best = max(r["test_accuracy"] for r in rows)
    per_epoch = sum(r["training_seconds"] for r in rows) / len(rows)
    with open(out / "summary.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["model", "epochs", "train_images", "test_images", "test_accuracy", "best_test_accuracy",
                    "training_seconds_per_epoch", "seconds", "torch", "threads", "schedule", "augment", "batch_size",
                    "lr", "weight_decay", "shift"])
        w.writerow([args.model, epochs, len(y_train), len(y_test), rows[-1]["test_accuracy"], best, per_epoch, total,
                    torch.__version__, torch.get_num_threads(), args.schedule, args.augment, batch, args.lr,
                    args.weight_decay, shift])
    print(f"final test accuracy: {rows[-1]['test_accuracy']:.4f} (best {best:.4f}) after {epochs} epochs; "
          f"training {per_epoch:.1f} s per epoch, {total:.1f} s in all")
    print(f"wrote {out / 'metrics.csv'} and {out / 'summary.csv'}")
    if args.compare:
        compare(Path(args.compare), args, epochs, len(y_train), len(y_test), batch, shift, rows[-1]["test_accuracy"])


def augmented(x, how, shift):
    """x (B, C, H, W) flipped left-right at random (flip), and moved by up to `shift` pixels (flip-shift)."""
    if how == "none":
        return x
    flip = torch.rand(len(x)) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    if how == "flip-shift":
        h, w = x.shape[2], x.shape[3]
        padded = nn.functional.pad(x, (shift, shift, shift, shift))
        dy, dx = torch.randint(0, 2 * shift + 1, (len(x),)), torch.randint(0, 2 * shift + 1, (len(x),))
        x = torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(len(x))])
    return x


def compare(directory, args, epochs, n_train, n_test, batch, shift, torch_accuracy):
    """xgrad's final test accuracy (DIR/summary.csv of examples/convnet) beside this run's, when the
    two trained the same model on the same images the same way (a summary without the later columns
    comes from before they existed, when the example had no such flags: constant schedule, no
    augmentation, batch 100, lr 0.001, no weight decay, shifts of 2 for flip-shift)."""
    model = args.model
    try:
        with open(directory / "summary.csv", newline="") as f:
            xgrad = next(csv.DictReader(f))
    except (OSError, StopIteration) as e:
        sys.exit(f"torch_convnet: --compare: cannot read {directory / 'summary.csv'}: {e}")
    theirs = (xgrad["model"], int(xgrad["epochs"]), int(xgrad["train_images"]), int(xgrad["test_images"]),
              xgrad.get("schedule", "constant"), xgrad.get("augment", "none"), int(xgrad.get("batch_size", 100)),
              int(xgrad.get("shift", 2 if xgrad.get("augment") == "flip-shift" else 0)),
              float(xgrad.get("lr", 1e-3)), float(xgrad.get("weight_decay", 0)))
    ours = (model, epochs, n_train, n_test, args.schedule, args.augment, batch, shift, args.lr, args.weight_decay)
    if theirs[:8] != ours[:8] or any(not math.isclose(a, b, rel_tol=1e-9) for a, b in zip(theirs[8:], ours[8:])):
        names = ("model", "epochs", "train images", "test images", "schedule", "augment", "batch size", "shift", "lr",
                 "weight decay")
        sys.exit(f"torch_convnet: --compare: {directory} is a run of "
                 f"{', '.join(f'{n} {v}' for n, v in zip(names, theirs))}; this one of "
                 f"{', '.join(f'{n} {v}' for n, v in zip(names, ours))}")
    points = 100 * (float(xgrad["test_accuracy"]) - torch_accuracy)
    print(f"test accuracy after {epochs} epochs: xgrad {float(xgrad['test_accuracy']):.4f}, PyTorch "
          f"{torch_accuracy:.4f}: xgrad {points:+.2f} points, {'within' if abs(points) <= 0.5 else 'NOT within'} "
          f"0.5 points")


if __name__ == "__main__":
    main()
