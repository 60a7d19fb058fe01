// Behavioural model of a DPU-style integer Dense layer (power-of-two requantization), standing in for
// the device under test of tb_dense_pow2.sv. Replace it with your RTL; keep the ports.
//   acc[o] = sum_i x[i] * w[o][i]              (signed, zero points 0 on the DPU)
//   t      = acc + (SHIFT_BIAS >= 0 ? b[o] << SHIFT_BIAS : b[o] >>> -SHIFT_BIAS)
//   y[o]   = clamp((t + 2^(SHIFT_CUT-1)) >>> SHIFT_CUT, ACT_MIN, ACT_MAX)   (round half up; SHIFT_CUT >= 0)
// Vectors are flattened: x[i] at x_flat[i*XB +: XB], w (OI layout) at w_flat[(o*IN+i)*WB +: WB].
module dense_pow2 #(
    parameter integer IN = 84, OUT = 10, XB = 8, WB = 8, BB = 8, YB = 8,
    parameter integer SHIFT_CUT = 0, SHIFT_BIAS = 0, ACT_MIN = -128, ACT_MAX = 127
) (
    input  wire [IN*XB-1:0]     x_flat,
    input  wire [OUT*IN*WB-1:0] w_flat,
    input  wire [OUT*BB-1:0]    b_flat,
    output reg  [OUT*YB-1:0]    y_flat
);
  integer o, i;
  reg signed [63:0] acc, t, r;
  always @* begin
    for (o = 0; o < OUT; o = o + 1) begin
      acc = 0;
      for (i = 0; i < IN; i = i + 1)
        acc = acc + $signed(x_flat[i*XB +: XB]) * $signed(w_flat[(o*IN+i)*WB +: WB]);
      t = $signed(b_flat[o*BB +: BB]);
      t = (SHIFT_BIAS >= 0) ? (t <<< SHIFT_BIAS) : (t >>> -SHIFT_BIAS);
      t = acc + t;
      r = (SHIFT_CUT > 0) ? ((t + (64'sd1 <<< (SHIFT_CUT - 1))) >>> SHIFT_CUT) : t;
      if (r < ACT_MIN) r = ACT_MIN;
      if (r > ACT_MAX) r = ACT_MAX;
      y_flat[o*YB +: YB] = r[YB-1:0];
    end
  end
endmodule
