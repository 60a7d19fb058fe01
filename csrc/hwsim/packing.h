// Packing of 4-bit and 2-bit integers into bytes, and unpacking.
//
// Element j of a `bits`-wide stream (bits in {2, 4}; per = 8 / bits elements per byte) lives in byte
// j / per at slot s = j % per. LOW_FIRST (the default; TFLite UnpackDenseInt4IntoInt8, ONNX/onnxruntime
// Int4x2, FBGEMM fused n-bit rows) puts slot s at bit offset s * bits, so the first element is in the
// low nibble/crumb: int2 byte 0x12 unpacks to {2, 0, 1, 0}. HIGH_FIRST puts slot s at bit offset
// 8 - (s + 1) * bits. A trailing partial byte keeps its unused slots zero. Packing keeps the low `bits`
// bits of each value (two's complement for negatives); signed unpacking sign-extends them.
#pragma once

#include <cstdint>

namespace hwsim {

enum class PackOrder : int { LOW_FIRST = 0, HIGH_FIRST = 1 };

inline int PackSlotOffset(int slot, int bits, PackOrder order) {
  return order == PackOrder::LOW_FIRST ? slot * bits : 8 - (slot + 1) * bits;
}

inline int64_t PackedByteCount(int64_t count, int bits) { return (count * bits + 7) / 8; }

template <typename In>
void PackBits(const In* values, int64_t count, int bits, PackOrder order, uint8_t* out) {
  const int per = 8 / bits;
  const unsigned mask = (1u << bits) - 1u;
  const int64_t n_bytes = PackedByteCount(count, bits);
  for (int64_t b = 0; b < n_bytes; ++b) out[b] = 0;
  for (int64_t j = 0; j < count; ++j) {
    const unsigned v = static_cast<unsigned>(static_cast<int64_t>(values[j])) & mask;
    out[j / per] = static_cast<uint8_t>(out[j / per] | (v << PackSlotOffset(static_cast<int>(j % per), bits, order)));
  }
}

template <typename Out>
void UnpackBits(const uint8_t* data, int64_t count, int bits, bool is_signed, PackOrder order, Out* out) {
  const int per = 8 / bits;
  const unsigned mask = (1u << bits) - 1u;
  for (int64_t j = 0; j < count; ++j) {
    const unsigned v = (static_cast<unsigned>(data[j / per]) >> PackSlotOffset(static_cast<int>(j % per), bits, order)) & mask;
    int value = static_cast<int>(v);
    if (is_signed && (v >> (bits - 1)) != 0) value -= (1 << bits);  // sign extension
    out[j] = static_cast<Out>(value);
  }
}

}  // namespace hwsim
