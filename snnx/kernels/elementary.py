"""exp, softplus and sigmoid built from IEEE +, −, ×, ÷ only, so a kernel can reproduce them bit for bit.

torch's ``exp``, ``logaddexp`` and ``sigmoid`` on the CPU give results that
depend on where an element sits in the tensor (a SIMD body and a scalar tail
with different roundings) and on the build, so no fused kernel can match them
exactly. The functions here use only correctly rounded basic operations,
``clamp``/``abs`` and 2^n built from its bits, each applied in a fixed order: the torch
code below (the MSAT neuron's reference step, any device) and the numba code
of :mod:`snnx.kernels.msat` perform the same operations, so both give the same
bits for each element wherever it sits. Accuracy, checked against ``torch``'s
functions in float64 in the tests: a few units in the last place.

- ``exp(x)``: 0 below ``lo`` and ∞ above ``hi`` (e^x there is subnormal, or
  within a factor 2 of overflow; the range keeps 2^n below normal), else n = x·log2(e)
  rounded to nearest by adding and subtracting 1.5·2^(p−1) (p: the mantissa
  bits), r = x − n·ln2 with ln2 split in two (Cody & Waite 1980: n·ln2_hi is
  exact), e^r by its Taylor polynomial to degree 7 (float32) or 13 (float64)
  on |r| ≤ ln2/2 (truncation below 2^−26, 2^−57), times 2^n (its bits: exponent n + bias);
- ``log1p(y)`` for y in [0, 1]: 2·atanh(s) with s = y/(2 + y) ≤ 1/3, the odd
  series to s^15 (float32) or s^33 (float64), truncation below the precision;
- ``softplus(x) = max(x, 0) + log1p(exp(−|x|))`` (no overflow for any x);
- ``sigmoid(a) = 1 / (1 + exp(−a))``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch


@dataclass(frozen=True)
class Constants:
    """The constants of one float dtype, as Python floats (each rounds to the dtype exactly once)."""

    lo: float  # exp's argument range: 2^n stays normal and p·2^n finite (0 below, ∞ above)
    hi: float
    shifter: float  # 1.5·2^(mantissa bits − 1): (y + s) − s rounds y to the nearest integer
    ln2_hi: float  # ln 2 = ln2_hi + ln2_lo, ln2_hi with trailing zero bits (n·ln2_hi exact)
    ln2_lo: float
    exp_degree: int
    log_terms: int
    int_dtype: torch.dtype  # the integer type of the same width: 2^n is built from its bits
    exponent_bias: int
    mantissa_bits: int
    log2e: float = 1.4426950408889634
    exp_coefficients: tuple = field(init=False)  # 1/k!, highest degree first (Horner)
    log_coefficients: tuple = field(init=False)  # 1/(2k+1), highest first

    def __post_init__(self):
        object.__setattr__(self, "exp_coefficients",
                           tuple(1.0 / math.factorial(k) for k in range(self.exp_degree, -1, -1)))
        object.__setattr__(self, "log_coefficients",
                           tuple(1.0 / (2 * k + 1) for k in range(self.log_terms - 1, -1, -1)))


CONSTANTS = {
    # float32: ln2_hi = 355/512 (9 bits; n has at most 8), ln2_lo = ln 2 − ln2_hi.
    torch.float32: Constants(lo=-87.0, hi=88.0, shifter=1.5 * 2.0 ** 23, ln2_hi=0.693359375,
                             ln2_lo=-2.12194440054690583e-4, exp_degree=7, log_terms=8, int_dtype=torch.int32,
                             exponent_bias=127, mantissa_bits=23),
    # float64: ln2_hi with its low 32 bits zero (fdlibm's split), n has at most 11 bits.
    torch.float64: Constants(lo=-708.0, hi=709.0, shifter=1.5 * 2.0 ** 52, ln2_hi=6.93147180369123816490e-01,
                             ln2_lo=1.90821492927058770002e-10, exp_degree=13, log_terms=17, int_dtype=torch.int64,
                             exponent_bias=1023, mantissa_bits=52),
}

def constants(dtype: torch.dtype) -> Constants:
    if dtype not in CONSTANTS:
        raise TypeError(f"snnx.kernels.elementary works in float32 or float64, got {dtype}")
    return CONSTANTS[dtype]


def pow2(n: torch.Tensor) -> torch.Tensor:
    """2^n, exactly, for float n holding integers in the normal exponent range: the float's bits built directly."""
    c = constants(n.dtype)
    return ((n.to(c.int_dtype) + c.exponent_bias) << c.mantissa_bits).view(n.dtype)


def _horner(x: torch.Tensor, coefficients: tuple) -> torch.Tensor:
    p = coefficients[0] * x + coefficients[1]
    for a in coefficients[2:]:
        p = p * x + a
    return p


def exp(x: torch.Tensor) -> torch.Tensor:
    c = constants(x.dtype)
    xc = x.clamp(c.lo, c.hi)
    n = (xc * c.log2e + c.shifter) - c.shifter
    r = (xc - n * c.ln2_hi) - n * c.ln2_lo
    y = _horner(r, c.exp_coefficients) * pow2(n)
    y = torch.where(x < c.lo, 0.0, y)
    return torch.where(x > c.hi, math.inf, y)


def log1p_unit(y: torch.Tensor) -> torch.Tensor:
    """ln(1 + y) for y in [0, 1]."""
    c = constants(y.dtype)
    s = y / (y + 2.0)
    return (s * _horner(s * s, c.log_coefficients)) * 2.0


def softplus(x: torch.Tensor) -> torch.Tensor:
    """ln(1 + e^x)."""
    return x.clamp_min(0.0) + log1p_unit(exp(-x.abs()))


def sigmoid(a: torch.Tensor) -> torch.Tensor:
    """1 / (1 + e^−a)."""
    return torch.reciprocal(exp(-a) + 1.0)
