// Row sources for the GEMM driver: where row m, columns [k0, k0 + len) of the activation matrix A come
// from (copy_row; copy_rows does a block of consecutive rows into a strided buffer). The driver copies them into packed micro-panels, so im2col is never materialised as a whole:
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
    void copy_rows(int64_t m0, int64_t rows, int64_t k0, int64_t len, uint8_t* dst, int64_t ldd) const {
        for (int64_t r = 0; r < rows; ++r) copy_row(m0 + r, k0, len, dst + r * ldd);
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

    void copy_row(int64_t m, int64_t k0, int64_t len, uint8_t* dst) const { copy_rows(m, 1, k0, len, dst, len); }

    // Rows [m0, m0 + rows), columns [k0, k0 + len) into dst (row stride ldd bytes). Divisions happen once
    // per call; the output position then advances row by row.
    void copy_rows(int64_t m0, int64_t rows, int64_t k0, int64_t len, uint8_t* dst, int64_t ldd) const {
        if (len <= 0 || rows <= 0) return;
        const int64_t oh_n = geo.out_h(), ow_n = geo.out_w();
        int64_t n = m0 / (oh_n * ow_n);
        const int64_t rem = m0 % (oh_n * ow_n);
        int64_t oh = rem / ow_n, ow = rem % ow_n;
        const int64_t row_len = geo.kernel_w * geo.group_in_c();  // one kernel row (kh): KW taps x cg channels
        const int64_t kh0 = k0 / row_len, off0 = k0 - kh0 * row_len;
        for (int64_t r = 0; r < rows; ++r) {
            copy_at(n, oh, ow, kh0, off0, len, dst + r * ldd);
            if (++ow == ow_n) {
                ow = 0;
                if (++oh == oh_n) {
                    oh = 0;
                    ++n;
                }
            }
        }
    }

  private:
    // Output position (n, oh, ow); columns from element off of kernel row kh on, len of them.
    void copy_at(int64_t n, int64_t oh, int64_t ow, int64_t kh, int64_t off, int64_t len, uint8_t* dst) const {
        const int64_t cg = geo.group_in_c();
        const int64_t row_len = geo.kernel_w * cg;
        const int64_t ih_base = oh * geo.stride_h - geo.pad_top, iw0 = ow * geo.stride_w - geo.pad_left;
        // Ungrouped, undilated: the taps of a kernel row are adjacent pixels of one input row, so its
        // in-bounds part is one contiguous run of bytes (elements e of the segment read input column
        // iw0 + e / cg); the out-of-bounds ends hold pad_byte.
        const bool contiguous = cg == geo.in_c && geo.dilation_w == 1;
        for (int64_t k = 0; k < len; ++kh, off = 0) {
            const int64_t seg = std::min(row_len - off, len - k);  // elements [off, off + seg) of row kh
            const int64_t ih = ih_base + kh * geo.dilation_h;
            if (ih < 0 || ih >= geo.in_h) {
                fill_bytes(dst, pad_byte, seg);
            } else {
                const uint8_t* src_row = x + ((n * geo.in_h + ih) * geo.in_w) * geo.in_c + channel_offset;
                if (contiguous) {
                    const int64_t first_in = std::max<int64_t>(0, -iw0) * cg;                  // e < first_in: left pad
                    const int64_t last_in = std::min<int64_t>(row_len, (geo.in_w - iw0) * cg);  // e >= last_in: right pad
                    const int64_t a = std::min(std::max(first_in, off), off + seg);
                    const int64_t b = std::max(std::min(last_in, off + seg), a);
                    fill_bytes(dst, pad_byte, a - off);
                    copy_bytes(dst + (a - off), src_row + iw0 * cg + a, b - a);
                    fill_bytes(dst + (b - off), pad_byte, off + seg - b);
                } else {
                    int64_t kw = off / cg, ci = off - kw * cg;
                    for (int64_t e = 0; e < seg; ++kw, ci = 0) {
                        const int64_t run = std::min(cg - ci, seg - e);
                        const int64_t iw = iw0 + kw * geo.dilation_w;
                        if (iw >= 0 && iw < geo.in_w) copy_bytes(dst + e, src_row + iw * geo.in_c + ci, run);
                        else fill_bytes(dst + e, pad_byte, run);
                        e += run;
                    }
                }
            }
            dst += seg;
            k += seg;
        }
    }

    // Short copies are the common case (a kernel row of a 3-channel stem is 9 or 21 bytes): overlapping
    // 8-byte moves instead of a library call.
    static void copy_bytes(uint8_t* dst, const uint8_t* src, int64_t n) {
        if (n >= 8 && n <= 16) {
            uint64_t lo, hi;
            std::memcpy(&lo, src, 8);
            std::memcpy(&hi, src + n - 8, 8);
            std::memcpy(dst, &lo, 8);
            std::memcpy(dst + n - 8, &hi, 8);
        } else if (n > 16) {
            std::memcpy(dst, src, static_cast<size_t>(n));
        } else {
            for (int64_t i = 0; i < n; ++i) dst[i] = src[i];
        }
    }
    static void fill_bytes(uint8_t* dst, uint8_t v, int64_t n) {
        if (n > 16) std::memset(dst, v, static_cast<size_t>(n));
        else for (int64_t i = 0; i < n; ++i) dst[i] = v;
    }
};

}  // namespace hwsim
