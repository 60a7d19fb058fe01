"""Train LeNet-5 on scikit-learn's bundled handwritten digits and write it as an hwsim model.

This is a development tool (it needs torch and scikit-learn; hwsim itself does not). It writes
``examples/lenet5.npz`` and the identical ``hwsim/zoo/data/lenet5.npz`` (the copy an installed wheel ships),
both in hwsim's model.npz format with the calibration and evaluation sets bundled.

Data
    ``sklearn.datasets.load_digits``: 1,797 grey-level images of 8x8 pixels with values 0..16. Each image is
    upsampled to 32x32 bilinearly (half-pixel centres, i.e. torch ``interpolate(align_corners=False)``,
    edges clamped) and divided by 16, so inputs lie in [0, 1] on a grid of 1/1024 (exact in float32).
    Layout NHWC, shape [N, 32, 32, 1].
Split (stratified by label, fixed seed)
    20 % held out for evaluation (360 images, bundled with labels), 200 images for calibration (bundled,
    no labels needed), the remaining 1,237 for training. The three sets are disjoint.
Network (classic LeNet-5 shapes, modern activations)
    conv 5x5 -> 6, ReLU, max pool 2x2/2, conv 5x5 -> 16, ReLU, max pool 2x2/2, flatten (400),
    dense 120, ReLU, dense 84, ReLU, dense 10 (logits). No padding: 32 -> 28 -> 14 -> 10 -> 5.
Training
    Adam (lr 3e-3, cosine decay to 0 per step), batch 32, 30 epochs, cross-entropy; deterministic: one
    thread, fixed seeds, ``torch.use_deterministic_algorithms(True)``; two runs write byte-identical files.
    Held-out float accuracy: 97.8 % (352 of 360).
Conversion
    Conv weights OIHW -> OHWI; the first dense layer's input columns are permuted from torch's C,H,W
    flattening order to hwsim's H,W,C order. The script then checks that hwsim's float reference reproduces
    torch's logits on the evaluation set (max |difference| <= 1e-5 x max |logit|) and fails otherwise.

Usage: ``python tools/train_lenet5.py`` from the repository root.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np

SEED = 20261125
EPOCHS = 30
BATCH = 32
LR = 3e-3
N_CALIBRATION = 200
EVAL_FRACTION = 0.2

ROOT = Path(__file__).resolve().parents[1]


def load_data(seed: int) -> dict[str, np.ndarray]:
    """Digits as NHWC float32 [N, 32, 32, 1] in [0, 1], split into train / calibration / evaluation."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = digits.images.astype(np.float32)  # [N, 8, 8], values 0..16
    labels = digits.target.astype(np.int64)
    x = upsample_bilinear(images)[..., None] / np.float32(16.0)
    idx = np.arange(len(x))
    rest, evaluation = train_test_split(idx, test_size=EVAL_FRACTION, stratify=labels, random_state=seed)
    train, calibration = train_test_split(
        rest, test_size=N_CALIBRATION, stratify=labels[rest], random_state=seed + 1
    )
    return {
        "x_train": x[train], "y_train": labels[train],
        "x_calib": x[calibration], "y_calib": labels[calibration],
        "x_eval": x[evaluation], "y_eval": labels[evaluation],
    }


def upsample_bilinear(images: np.ndarray) -> np.ndarray:
    """[N, 8, 8] -> [N, 32, 32], bilinear with half-pixel centres (align_corners=False), edges clamped.

    With a 4x factor every weight is a multiple of 1/8, so the results are multiples of 1/64 of the
    0..16 pixel scale: exact in float32.
    """
    import torch

    t = torch.from_numpy(np.ascontiguousarray(images[:, None]))
    up = torch.nn.functional.interpolate(t, size=(32, 32), mode="bilinear", align_corners=False)
    return up[:, 0].numpy()


def make_torch_model():
    import torch.nn as nn

    return nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, 10),
    )


def train(data: dict[str, np.ndarray], seed: int):
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    model = make_torch_model()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = torch.nn.CrossEntropyLoss()
    x = torch.from_numpy(np.ascontiguousarray(data["x_train"].transpose(0, 3, 1, 2)))
    y = torch.from_numpy(data["y_train"])
    gen = torch.Generator().manual_seed(seed)
    steps_per_epoch = -(-len(x) // BATCH)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=EPOCHS * steps_per_epoch)
    for _ in range(EPOCHS):
        model.train()
        perm = torch.randperm(len(x), generator=gen)
        for start in range(0, len(x), BATCH):
            batch = perm[start:start + BATCH]
            opt.zero_grad()
            loss = loss_fn(model(x[batch]), y[batch])
            loss.backward()
            opt.step()
            schedule.step()
    model.eval()
    return model


def torch_logits(model, x_nhwc: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return model(torch.from_numpy(np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2)))).numpy()


def to_hwsim_params(model) -> dict[str, np.ndarray]:
    """Torch (OIHW, C,H,W flattening) to hwsim (OHWI, H,W,C flattening) parameter arrays."""
    sd = {k: v.detach().numpy().astype(np.float32) for k, v in model.state_dict().items()}
    fc1 = sd["7.weight"].reshape(120, 16, 5, 5).transpose(0, 2, 3, 1).reshape(120, 400)
    return {
        "conv1.weight": sd["0.weight"].transpose(0, 2, 3, 1), "conv1.bias": sd["0.bias"],
        "conv2.weight": sd["3.weight"].transpose(0, 2, 3, 1), "conv2.bias": sd["3.bias"],
        "fc1.weight": fc1, "fc1.bias": sd["7.bias"],
        "fc2.weight": sd["9.weight"], "fc2.bias": sd["9.bias"],
        "fc3.weight": sd["11.weight"], "fc3.bias": sd["11.bias"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("-o", "--output", type=Path, default=ROOT / "examples" / "lenet5.npz")
    parser.add_argument("--no-package-copy", action="store_true",
                        help="do not copy the result to hwsim/zoo/data/lenet5.npz")
    args = parser.parse_args(argv)

    import torch

    from hwsim.emulate.float_ref import run_float
    from hwsim.graph import save_model
    from hwsim.zoo.lenet5 import lenet5_graph

    data = load_data(args.seed)
    model = train(data, args.seed)
    ref = torch_logits(model, data["x_eval"])
    torch_acc = float(np.mean(ref.argmax(axis=1) == data["y_eval"]))

    metadata = {
        "description": "LeNet-5 trained on scikit-learn's handwritten digits (8x8 upsampled to 32x32)",
        "trained": True,
        "produced_by": "tools/train_lenet5.py",
        "seed": args.seed,
        "torch_version": torch.__version__,
        "training": f"Adam lr {LR} cosine-annealed per step, batch {BATCH}, {EPOCHS} epochs",
        "preprocessing": (
            "sklearn load_digits 8x8 (0..16), bilinear 4x upsampling to 32x32 "
            "(half-pixel centres, align_corners=False), /16 -> [0, 1]"
        ),
        "split": f"stratified: {len(data['x_train'])} train, {len(data['x_calib'])} calibration, "
                 f"{len(data['x_eval'])} evaluation (disjoint)",
        "architecture": "conv5x5x6-relu-maxpool2-conv5x5x16-relu-maxpool2-fc120-relu-fc84-relu-fc10",
    }
    graph = lenet5_graph(
        to_hwsim_params(model),
        calibration=data["x_calib"],
        evaluation=(data["x_eval"], data["y_eval"]),
        metadata=metadata,
    )
    out = run_float(graph, {graph.inputs[0].name: data["x_eval"]})[graph.outputs[0]]
    rel = float(np.max(np.abs(out - ref)) / np.max(np.abs(ref)))
    acc = float(np.mean(out.argmax(axis=1) == data["y_eval"]))
    print(f"torch eval accuracy {torch_acc:.4f}, hwsim float accuracy {acc:.4f}, max rel diff {rel:.2e}")
    if rel > 1e-5 or acc != torch_acc:
        print("error: hwsim's float reference does not reproduce torch's logits", file=sys.stderr)
        return 1
    graph.metadata["float_accuracy"] = acc
    graph.metadata["float_accuracy_set"] = f"evaluation ({len(data['x_eval'])} held-out images)"

    args.output.parent.mkdir(parents=True, exist_ok=True)
    save_model(graph, args.output, compress=True)
    print(f"wrote {args.output} ({args.output.stat().st_size / 1024:.0f} KiB)")
    if not args.no_package_copy:
        packaged = ROOT / "hwsim" / "zoo" / "data" / "lenet5.npz"
        packaged.parent.mkdir(parents=True, exist_ok=True)
        if packaged.resolve() != args.output.resolve():
            shutil.copyfile(args.output, packaged)
            print(f"copied to {packaged}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
