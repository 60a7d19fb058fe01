"""DPU cycle formulas against the worked checks of perf-anchors 1.2 and the parallelism table of 2.1."""

from __future__ import annotations

import pytest

from hwsim.cost.dpu import conv_cycles, dense_cycles, depthwise_cycles, elementwise_cycles, pool_cycles
from hwsim.targets import load_target

B4096 = dict(pp=8, icp=16, ocp=16)


@pytest.mark.parametrize("name, shape, cycles", [
    # perf-anchors 1.2 "(derived)": ceil(OW/PP) x OH x ceil(IC/ICP) x KH x KW x ceil(OC/OCP)
    ("res2a_branch2b 3x3 64->64 56x56", dict(oh=56, ow=56, oc=64, kh=3, kw=3, ic=64), 7 * 56 * 4 * 9 * 4),
    ("res5a_branch2b 3x3 512->512 7x7", dict(oh=7, ow=7, oc=512, kh=3, kw=3, ic=512), 64_512),
    # channel augmentation: IC folded as ceil(3 x 7 / 16) = 2, "about 88k cycles"
    ("conv1 7x7/2 3->64 112x112", dict(oh=112, ow=112, oc=64, kh=7, kw=7, ic=3), 14 * 112 * 2 * 7 * 4),
])
def test_conv_cycles_match_the_worked_checks(name, shape, cycles):
    assert conv_cycles(1, groups=1, **shape, **B4096) == cycles


def test_channel_augmentation_only_for_few_input_channels():
    without = conv_cycles(1, 112, 112, 64, 7, 7, 3, 1, **B4096, channel_augmentation=False)
    assert without == 14 * 112 * 1 * 49 * 4 > conv_cycles(1, 112, 112, 64, 7, 7, 3, 1, **B4096)
    # IC >= ICP: augmentation changes nothing
    assert conv_cycles(1, 28, 28, 128, 3, 3, 128, 1, **B4096) == \
        conv_cycles(1, 28, 28, 128, 3, 3, 128, 1, **B4096, channel_augmentation=False)


@pytest.mark.parametrize("arch, pp, cp", [("B512", 4, 8), ("B1152", 4, 12), ("B4096", 8, 16)])
def test_full_tiles_reach_the_peak_macs_per_cycle(arch, pp, cp):
    # perf-anchors 2.1: MACs/clk = PP x ICP x OCP; a layer that fills every lane reaches it exactly
    oh, ow, ic, oc, k = 4, pp * 3, cp * 2, cp * 5, 3
    macs = oh * ow * oc * k * k * ic
    assert macs / conv_cycles(1, oh, ow, oc, k, k, ic, 1, pp, cp, cp) == pp * cp * cp


def test_other_engines():
    assert depthwise_cycles(1, 56, 56, 144, 3, 3, 8, 16) == 56 * 7 * 9 * 9
    assert dense_cycles(1, 2048, 1000, 8, 16, 16) == 1 * 128 * 63
    assert pool_cycles(1, 56, 56, 64, 3, 3, 8, 16) == 56 * 7 * 4 * 9
    assert elementwise_cycles(56 * 56 * 256, 8, 16) == 56 * 56 * 256 // 128
    assert elementwise_cycles(1, 8, 16) == 1


def test_b4096_target_parameters_are_consistent():
    c = load_target("fpga_dpu").cost
    lanes = c.pixel_parallel * c.input_channel_parallel * c.output_channel_parallel
    assert lanes == c.int8_macs_per_cycle_per_core
    assert 0 < c.conv_efficiency <= 1 and c.feature_map_onchip_kib < c.sram_kib
