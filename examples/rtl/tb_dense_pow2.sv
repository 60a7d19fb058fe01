// Self-checking testbench: reads one Dense layer's vectors written by
//   hwsim export-vectors --target fpga_dpu --layers fc3 --format hex --word-bits 32 model.npz -o VEC
// ($readmemh, 32-bit words, element i of a word at bits [i*b, (i+1)*b)), drives dense_pow2 and compares
// every output with y.hex. Prints "PASS" or the first mismatch and stops with $fatal (non-zero exit).
// Parameters come from VEC/manifest.json; examples/rtl/run_tb.py fills them in and runs Icarus Verilog.
`timescale 1ns / 1ps
module tb_dense_pow2;
  parameter integer IN = 84, OUT = 10, XB = 8, WB = 8, BB = 8, YB = 8;
  parameter integer SHIFT_CUT = 0, SHIFT_BIAS = 0, ACT_MIN = -128, ACT_MAX = 127;
  parameter DIR = ".";  // the layer's folder inside VEC
  localparam integer WORD = 32;

  // Words in each file: elements packed WORD/bits per word, the last word zero-padded.
  reg [WORD-1:0] xm [0:(IN*XB+WORD-1)/WORD-1];
  reg [WORD-1:0] wm [0:(OUT*IN*WB+WORD-1)/WORD-1];
  reg [WORD-1:0] bm [0:(OUT*BB+WORD-1)/WORD-1];
  reg [WORD-1:0] ym [0:(OUT*YB+WORD-1)/WORD-1];
  reg [IN*XB-1:0] x_flat;
  reg [OUT*IN*WB-1:0] w_flat;
  reg [OUT*BB-1:0] b_flat;
  reg [OUT*YB-1:0] expected;
  wire [OUT*YB-1:0] y_flat;
  integer k, errors;

  dense_pow2 #(.IN(IN), .OUT(OUT), .XB(XB), .WB(WB), .BB(BB), .YB(YB), .SHIFT_CUT(SHIFT_CUT),
               .SHIFT_BIAS(SHIFT_BIAS), .ACT_MIN(ACT_MIN), .ACT_MAX(ACT_MAX))
      dut (.x_flat(x_flat), .w_flat(w_flat), .b_flat(b_flat), .y_flat(y_flat));

  initial begin
    $readmemh({DIR, "/x.hex"}, xm);
    $readmemh({DIR, "/w.hex"}, wm);
    $readmemh({DIR, "/b.hex"}, bm);
    $readmemh({DIR, "/y.hex"}, ym);
    for (k = 0; k < IN; k = k + 1) x_flat[k*XB +: XB] = xm[k / (WORD / XB)][(k % (WORD / XB)) * XB +: XB];
    for (k = 0; k < OUT * IN; k = k + 1) w_flat[k*WB +: WB] = wm[k / (WORD / WB)][(k % (WORD / WB)) * WB +: WB];
    for (k = 0; k < OUT; k = k + 1) b_flat[k*BB +: BB] = bm[k / (WORD / BB)][(k % (WORD / BB)) * BB +: BB];
    for (k = 0; k < OUT; k = k + 1) expected[k*YB +: YB] = ym[k / (WORD / YB)][(k % (WORD / YB)) * YB +: YB];
    #1;
    errors = 0;
    for (k = 0; k < OUT; k = k + 1) begin
      if (y_flat[k*YB +: YB] !== expected[k*YB +: YB]) begin
        if (errors == 0)
          $display("FAIL: first mismatch at output %0d: expected %0d, got %0d", k,
                   $signed(expected[k*YB +: YB]), $signed(y_flat[k*YB +: YB]));
        errors = errors + 1;
      end
    end
    if (errors != 0) begin
      $display("FAIL: %0d of %0d outputs differ", errors, OUT);
      $fatal(1);
    end
    $display("PASS: %0d outputs bit-exact", OUT);
    $finish;
  end
endmodule
