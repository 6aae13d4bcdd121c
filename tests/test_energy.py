"""Energy per image (Yang et al. 2025, §5.7: E_AC = 0.9 pJ per accumulate, E_MAC = 4.6 pJ per multiply-accumulate,
32-bit float at 45 nm after Horowitz 2014; memory access left out), counted by hand on a tiny net and checked
against the paper's own Table 7."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from snnx.convert import convert
from snnx.sim import Simulator
from snnx.sim.accounting import energy_mj


def _paper_energy_mj(acs: float, macs: float) -> float:
    """§5.7 written out: joules = 0.9e-12·ACs + 4.6e-12·MACs, in mJ."""
    return (0.9e-12 * acs + 4.6e-12 * macs) * 1e3


class _TwoLayer(nn.Module):
    """1×3×3 → conv(1→2, 3×3, no padding: one output per channel) → IF → linear(2→3)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.act = nn.ReLU()
        self.fc = nn.Linear(2, 3)
        with torch.no_grad():
            self.conv.weight.fill_(0.0)
            self.conv.bias.copy_(torch.tensor([0.5, 0.0]))  # channel 0 fires every 2nd step, channel 1 never
            self.fc.weight.fill_(0.1)
            self.fc.bias.zero_()

    def forward(self, x):
        return self.fc(torch.flatten(self.act(self.conv(x)), 1))


def test_energy_per_image_is_the_papers_formula_on_a_hand_count():
    snn, _ = convert(_TwoLayer().double(), method="maxnorm", stats={"act": {"max": 1.0}},
                     convert={"maxpool": "error", "v_init": None})
    images = torch.rand(2, 1, 3, 3, dtype=torch.float64)
    sim = Simulator(snn, device=torch.device("cpu"), chunk=2, dtype=torch.float64)
    result = sim.run([(images, torch.zeros(2, dtype=torch.long))], [1, 4])
    # By hand: the conv reads the real-valued image once per image, 9 taps × 2 output channels = 18 MACs.
    # Channel 0 (current 0.5, θ = 1, v0 = 0) spikes at t = 2 and 4; each spike reaches the Linear's 3 outputs.
    macs, acs = {1: 18.0, 4: 18.0}, {1: 0.0, 4: 2 * 3.0}
    for T in (1, 4):
        stats = result.per_image(T)
        assert (stats["sops"], stats["macs"]) == (acs[T], macs[T])
        assert stats["energy_mj"] == pytest.approx(_paper_energy_mj(acs[T], macs[T]), rel=1e-12)


@pytest.mark.parametrize("acs_m, macs_m, printed, decimals", [
    (0.0, 1310.0, 6.026, 3),  # ANN
    (42.87, 8.65, 0.078, 3),  # SNN_QCFS
    (52.66, 8.43, 0.0862, 4),  # SNN_CS-QCFS
])
def test_snnx_constants_reproduce_yang2025_table7(acs_m, macs_m, printed, decimals):
    mine = energy_mj(acs_m * 1e6, macs_m * 1e6)
    assert mine == pytest.approx(_paper_energy_mj(acs_m * 1e6, macs_m * 1e6), rel=1e-12)
    assert round(mine, decimals) == pytest.approx(printed, abs=1e-12)
