/*
 * A deliberately wrong kernel, for showing what `hwsim cosim` reports: the fixed-point requantization rounds
 * once ((acc * M + 2^(t-1)) >> t) where a TFLite conv (FIXED_POINT_DOUBLE) rounds twice
 * (SaturatingRoundingDoublingHighMul, then RoundingDivideByPOT). The two differ by one LSB on a few
 * elements, exactly the kind of slip that survives a float-tolerance test.
 *
 *   cc -O2 -shared -fPIC -Iinclude examples/cosim/ref_layer_wrong.c -o libref_layer_wrong.so -lm
 */
#define EXAMPLE_BUG_SINGLE_ROUNDING 1
#include "ref_layer.c"
