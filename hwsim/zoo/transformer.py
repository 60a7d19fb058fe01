"""A tiny pre-LayerNorm transformer encoder with cross-layer parameter sharing (as in ALBERT).

Input ``tokens`` [batch, seq, d_model] float (already embedded). Every layer computes
``x = x + Wo·attention(LN1(x))`` and ``x = x + W2·GELU(W1·LN2(x))`` with multi-head scaled dot-product
attention, and all layers use ONE set of weights: the same parameter names (``shared.*``) appear as inputs of
every layer's nodes. A final LayerNorm closes the encoder. Ops exercised: Dense on rank-3 tensors, Reshape,
Transpose, MatMul of two activations (Q·Kᵀ with ``transpose_b``, attention·V), Mul by a scalar, Softmax,
LayerNorm, GELU (erf), Add.
"""

from __future__ import annotations

import math

import numpy as np

from hwsim.zoo._common import NetBuilder

SEQ, D_MODEL, HEADS, LAYERS, D_FF = 16, 64, 4, 4, 256


def build(seed: int, seq: int = SEQ, d_model: int = D_MODEL, heads: int = HEADS, layers: int = LAYERS,
          d_ff: int = D_FF, batch: int = 1) -> NetBuilder:
    """The shared-weight encoder on [batch, seq, d_model]; returns the builder (graph not built yet)."""
    net = NetBuilder("transformer_tiny", seed)
    rng = net.rng
    dh = d_model // heads

    def w(name: str, cout: int, cin: int) -> str:
        return net.param(name, rng.standard_normal((cout, cin)) * math.sqrt(1.0 / cin))

    def bias(name: str, c: int) -> str:
        return net.param(name, 0.02 * rng.standard_normal(c))

    def ln(prefix: str) -> tuple[str, str]:
        return (net.param(f"{prefix}.gamma", 1.0 + 0.1 * rng.standard_normal(d_model)),
                net.param(f"{prefix}.beta", 0.05 * rng.standard_normal(d_model)))

    shared = {
        "ln1": ln("shared.ln1"),
        "q": (w("shared.attn.q.weight", d_model, d_model), bias("shared.attn.q.bias", d_model)),
        "k": (w("shared.attn.k.weight", d_model, d_model), bias("shared.attn.k.bias", d_model)),
        "v": (w("shared.attn.v.weight", d_model, d_model), bias("shared.attn.v.bias", d_model)),
        "o": (w("shared.attn.out.weight", d_model, d_model), bias("shared.attn.out.bias", d_model)),
        "ln2": ln("shared.ln2"),
        "fc1": (w("shared.mlp.fc1.weight", d_ff, d_model), bias("shared.mlp.fc1.bias", d_ff)),
        "fc2": (w("shared.mlp.fc2.weight", d_model, d_ff), bias("shared.mlp.fc2.bias", d_model)),
    }
    scale = net.param("shared.attn.scale", np.array([1.0 / math.sqrt(dh)]))
    final_ln = ln("final_ln")

    x = net.b.input("tokens", [batch, seq, d_model])
    for i in range(layers):
        p = f"layer{i}"
        h = net.op("LayerNorm", [x, *shared["ln1"]], f"{p}.ln1", axis=-1, epsilon=1e-5)
        parts = []
        for role in ("q", "k", "v"):
            t = net.op("Dense", [h, *shared[role]], f"{p}.attn.{role}")
            t = net.op("Reshape", t, f"{p}.attn.{role}.split", shape=[batch, seq, heads, dh])
            parts.append(net.op("Transpose", t, f"{p}.attn.{role}.heads", perm=[0, 2, 1, 3]))
        q, k, v = parts
        s = net.op("MatMul", [q, k], f"{p}.attn.scores", transpose_b=True)  # [b, heads, seq, seq]
        s = net.op("Mul", [s, scale], f"{p}.attn.scaled")
        a = net.op("Softmax", s, f"{p}.attn.softmax", axis=-1)
        c = net.op("MatMul", [a, v], f"{p}.attn.context")  # [b, heads, seq, dh]
        c = net.op("Transpose", c, f"{p}.attn.merge", perm=[0, 2, 1, 3])
        c = net.op("Reshape", c, f"{p}.attn.concat", shape=[batch, seq, d_model])
        c = net.op("Dense", [c, *shared["o"]], f"{p}.attn.out")
        x = net.op("Add", [x, c], f"{p}.attn.residual")
        h = net.op("LayerNorm", [x, *shared["ln2"]], f"{p}.ln2", axis=-1, epsilon=1e-5)
        h = net.op("Dense", [h, *shared["fc1"]], f"{p}.mlp.fc1")
        h = net.op("GELU", h, f"{p}.mlp.gelu", approximate="none")
        h = net.op("Dense", [h, *shared["fc2"]], f"{p}.mlp.fc2")
        x = net.op("Add", [x, h], f"{p}.mlp.residual")
    x = net.op("LayerNorm", [x, *final_ln], "final_ln", axis=-1, epsilon=1e-5)
    net.b.output(x)
    return net
