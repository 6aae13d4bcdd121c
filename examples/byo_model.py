"""Bring your own ANN: train a small CNN of your own on scikit-learn's digits, convert it with four
methods through snnx.api, and print accuracy, spikes and energy at every T.

    python examples/byo_model.py            # about half a minute on a laptop CPU

The CNN is written as one would without snnx in mind: functional ReLUs and average pooling in
``forward``. A variant with max pooling shows the error snnx gives for it.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import snnx.api as api
from snnx.errors import SnnxError


class DigitsCNN(nn.Module):
    def __init__(self, pool=F.avg_pool2d):
        super().__init__()
        self.pool = pool
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc1 = nn.Linear(32 * 4 * 4, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.pool(torch.relu(self.conv2(x)), 2)
        x = self.fc1(torch.flatten(x, 1)).relu()
        return self.fc2(x)


def digits(seed: int = 0):
    """(train, test) datasets: the 1,797 8×8 digits scaled to [0, 1], split 1,400 / 397."""
    images, labels = load_digits(return_X_y=True)
    images = torch.tensor(images, dtype=torch.float32).view(-1, 1, 8, 8) / 16.0
    labels = torch.tensor(labels)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    images, labels = images[order], labels[order]
    return TensorDataset(images[:1400], labels[:1400]), TensorDataset(images[1400:], labels[1400:])


def train(model: nn.Module, data, epochs: int, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    loader = DataLoader(data, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(seed))
    model.train()
    for _ in range(epochs):
        for images, labels in loader:
            optimiser.zero_grad()
            F.cross_entropy(model(images), labels).backward()
            optimiser.step()
    return model.eval()


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--T", type=int, nargs="+", default=[4, 8, 16, 32, 64])
    parser.add_argument("--save", default=None, help="also save the maxnorm SNN here and load it back")
    args = parser.parse_args(argv)

    train_set, test_set = digits()
    model = train(DigitsCNN(), train_set, args.epochs)

    results = {}
    for method, params in [("maxnorm", {}), ("pnorm", {"percentile": 99.9}), ("msat", {}),
                           ("shift", {"variant": "S"})]:
        snn = api.convert(model, method=method, calibration=train_set, **params)
        result = api.simulate(snn, test_set, args.T, ann=model)
        results[method] = result
        print(f"\n{method} (ANN {result.to_pandas()['ann_acc'].iloc[0]:.2f} %)")
        print(result.to_pandas()[["T", "acc", "spikes_per_neuron", "sops", "energy_mj"]].to_string(index=False))
        if method == "maxnorm" and args.save:
            api.save_snn(snn, args.save)
            again = api.simulate(api.load_snn(args.save, model=DigitsCNN()), test_set, args.T)
            print(f"saved to {args.save}; loaded back: same accuracy at every T: "
                  f"{again.accuracy == result.accuracy}")

    try:
        api.convert(DigitsCNN(pool=F.max_pool2d).eval(), method="maxnorm", calibration=train_set)
    except SnnxError as err:
        print(f"\nwith max pooling: {err}")
    return results


if __name__ == "__main__":
    main()
