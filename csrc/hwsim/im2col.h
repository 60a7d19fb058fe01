// Row sources for the GEMM driver: where row m, columns [k0, k0 + len) of the activation matrix A come
// from. The driver copies them into packed micro-panels, so im2col is never materialised as a whole:
// each block of A is gathered right before it is multiplied (FBGEMM-style "im2col on the fly").
//
// Bytes are copied as raw bit patterns (uint8 for uint8 activations, the int8 bit pattern for int8 ones);
// the driver applies the +128 shift of int8 activations while packing.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace hwsim {

// A dense row-major [M, K] matrix with row stride lda bytes (a 1x1 stride-1 unpadded convolution is the
// NHWC input seen as [N*H*W, C] with lda = C, plus a channel offset per group).
struct DenseRows {
    const uint8_t* base = nullptr;
    int64_t lda = 0;

    void copy_row(int64_t m, int64_t k0, int64_t len, uint8_t* dst) const {
        std::memcpy(dst, base + m * lda + k0, static_cast<size_t>(len));
    }
};

// Geometry of a 2-D convolution over an NHWC input (ONNX conventions: pads are [top, left, bottom, right],
// output size = floor((in + pad_begin + pad_end - dilation * (kernel - 1) - 1) / stride) + 1).
struct Conv2dGeometry {
    int64_t batch = 0, in_h = 0, in_w = 0, in_c = 0;
    int64_t out_c = 0, kernel_h = 0, kernel_w = 0, groups = 1;
    int64_t stride_h = 1, stride_w = 1, dilation_h = 1, dilation_w = 1;
    int64_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;

    int64_t group_in_c() const { return in_c / groups; }
    int64_t group_out_c() const { return out_c / groups; }
    int64_t out_h() const { return (in_h + pad_top + pad_bottom - dilation_h * (kernel_h - 1) - 1) / stride_h + 1; }
    int64_t out_w() const { return (in_w + pad_left + pad_right - dilation_w * (kernel_w - 1) - 1) / stride_w + 1; }
    int64_t gemm_m() const { return batch * out_h() * out_w(); }
    int64_t gemm_k() const { return kernel_h * kernel_w * group_in_c(); }
    // 1x1, stride 1, no padding: A is the input itself, no gathering needed.
    bool is_pointwise() const {
        return kernel_h == 1 && kernel_w == 1 && stride_h == 1 && stride_w == 1 && pad_top == 0 && pad_left == 0 &&
               pad_bottom == 0 && pad_right == 0;
    }
};

// im2col rows of one group: row m = (n, oh, ow) (row-major), column k = (kh, kw, ci) with ci innermost
// (channels-last, FBGEMM's order; this is also the pairing order of AVX2_PAIRS: pairs are k = 2i, 2i+1 of
// this order). Taps outside the input hold pad_byte, the input zero point, so padding is a real 0.
struct Im2colRows {
    const uint8_t* x = nullptr;  // NHWC input
    Conv2dGeometry geo;
    int64_t channel_offset = 0;  // group * group_in_c
    uint8_t pad_byte = 0;

    void copy_row(int64_t m, int64_t k0, int64_t len, uint8_t* dst) const {
        const int64_t oh_n = geo.out_h(), ow_n = geo.out_w(), cg = geo.group_in_c();
        const int64_t n = m / (oh_n * ow_n), rem = m % (oh_n * ow_n);
        const int64_t oh = rem / ow_n, ow = rem % ow_n;
        const int64_t end = k0 + len;
        for (int64_t k = k0; k < end;) {
            const int64_t tap = k / cg, ci = k % cg;
            const int64_t kh = tap / geo.kernel_w, kw = tap % geo.kernel_w;
            const int64_t run = std::min(cg - ci, end - k);
            const int64_t ih = oh * geo.stride_h - geo.pad_top + kh * geo.dilation_h;
            const int64_t iw = ow * geo.stride_w - geo.pad_left + kw * geo.dilation_w;
            if (ih >= 0 && ih < geo.in_h && iw >= 0 && iw < geo.in_w) {
                const uint8_t* src = x + ((n * geo.in_h + ih) * geo.in_w + iw) * geo.in_c + channel_offset + ci;
                int64_t span = run;
                if (cg == geo.in_c && geo.dilation_w == 1) {
                    // Ungrouped, undilated: the taps kw, kw+1, ... of this kernel row are adjacent pixels of
                    // one input row, so all of them that lie inside the input are one contiguous run.
                    const int64_t taps = std::min(geo.kernel_w - kw, geo.in_w - iw);
                    span = std::min(taps * cg - ci, end - k);
                }
                std::memcpy(dst, src, static_cast<size_t>(span));
                dst += span;
                k += span;
            } else {
                std::memset(dst, pad_byte, static_cast<size_t>(run));
                dst += run;
                k += run;
            }
        }
    }
};

}  // namespace hwsim
