"""A torchvision ResNet-18 through snnx.api: convert with maxnorm and watch the SNN's mean output approach
the ANN's logits as T grows.

    python examples/torchvision_resnet.py                   # random weights (no download), 64×64 inputs
    python examples/torchvision_resnet.py --weights my.pt   # your own trained state_dict

ResNet-18 has a max-pooling stem: ``maxpool="avg"`` replaces it by average pooling of the same shape, so
the SNN approximates that ANN (printed below as "the converted ANN"), not the max-pooling original.
"""

from __future__ import annotations

import argparse

import torch
from torch import nn
from torchvision.models import resnet18

import snnx.api as api


def relative_error(outputs: torch.Tensor, logits: torch.Tensor) -> float:
    """Mean over images of ‖SNN output − ANN logits‖ / ‖ANN logits‖."""
    return float(((outputs - logits).norm(dim=1) / logits.norm(dim=1)).mean())


def main(argv=None) -> dict[int, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None, help="a state_dict for resnet18(num_classes=--classes)")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--size", type=int, default=64, help="input height and width")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--T", type=int, nargs="+", default=[32, 128, 512])
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    model = resnet18(weights=None, num_classes=args.classes)
    if args.weights:
        model.load_state_dict(torch.load(args.weights, map_location="cpu", weights_only=True))
    model.eval()
    images = torch.rand(args.batch, 3, args.size, args.size, generator=torch.Generator().manual_seed(1))
    calibration = torch.rand(64, 3, args.size, args.size, generator=torch.Generator().manual_seed(2))
    snn = api.convert(model, method="maxnorm", calibration=calibration, maxpool="avg")

    twin = resnet18(weights=None, num_classes=args.classes)
    twin.load_state_dict(model.state_dict())
    twin.maxpool = nn.AvgPool2d(model.maxpool.kernel_size, model.maxpool.stride, model.maxpool.padding)
    twin.eval()
    with torch.no_grad():
        converted_logits, original_logits = twin(images), model(images)
    labels = converted_logits.argmax(1)
    result = api.simulate(snn, (images, labels), args.T, batch_size=args.batch, keep_outputs=True)
    errors = {}
    print(f"ResNet-18, {args.batch} images {args.size}×{args.size}, maxnorm (θ = layer max over 64 images)")
    print("   T   rel. error vs the converted ANN   vs the max-pooling original   top-1 agreement %")
    for T in args.T:
        errors[T] = relative_error(result.outputs[T], converted_logits)
        print(f"{T:4d}   {errors[T]:31.4f}   {relative_error(result.outputs[T], original_logits):27.4f}   "
              f"{result.accuracy[T]:17.1f}")
    return errors


if __name__ == "__main__":
    main()
