#include "jpeg_huffman.h"

#include <cstring>
#include <limits>
#include <string>

#include "jpeg_error.h"

namespace craftgrad {

namespace {

// Zig-zag position → row-major position, with 16 more entries that hold 63: a run that
// passes the end of the block writes coefficient 63, as jpeg_natural_order does.
constexpr uint8_t kNaturalOrder[64 + 16] = {
    0,  1,  8,  16, 9,  2,  3,  10, 17, 24, 32, 25, 18, 11, 4,  5,  12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13,
    6,  7,  14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31,
    39, 46, 53, 60, 61, 54, 47, 55, 62, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63};

// The value of an s-bit magnitude category (T.81 F.2.2.1, EXTEND).
inline int extend(int v, int s) { return v < (1 << (s - 1)) ? v - (1 << s) + 1 : v; }

}  // namespace

void buildHuffmanTable(HuffmanTable& t, const uint8_t counts[16], const uint8_t* symbols, int numSymbols, bool dc) {
  if (dc) {
    for (int i = 0; i < numSymbols; ++i)
      if (symbols[i] > 15) jpegInvalid("bad Huffman table: DC symbol " + std::to_string(symbols[i]) + " is above 15");
  }
  std::memcpy(t.symbols, symbols, static_cast<size_t>(numSymbols));
  std::memset(t.fast, 0, sizeof t.fast);
  int32_t code = 0;
  int k = 0;
  for (int len = 1; len <= 16; ++len) {
    const int n = counts[len - 1];
    t.valoffset[len] = k - code;
    if (n == 0) {
      t.maxcode[len] = -1;
    } else {
      for (int i = 0; i < n; ++i, ++k, ++code) {
        if (len <= HuffmanTable::kFastBits) {
          const int shift = HuffmanTable::kFastBits - len;
          for (int j = 0; j < (1 << shift); ++j)
            t.fast[(code << shift) | j] = static_cast<uint16_t>((len << 8) | symbols[k]);
        }
      }
      t.maxcode[len] = code - 1;
    }
    // Canonical codes of this length must fit in len bits (T.81 C.2); more codes than
    // that is a table no encoder can write.
    if (code > (1 << len)) jpegInvalid("bad Huffman table: more codes than fit in " + std::to_string(len) + " bits");
    code <<= 1;
  }
  t.defined = true;
}

void BitReader::fill() {
  while (bits_ <= 56) {
    uint32_t byte = 0;
    if (!stopped_ && pos_ < size_) {
      byte = data_[pos_];
      if (byte != 0xFF) {
        ++pos_;
      } else {
        // 0xFF, any fill 0xFFs, then 0x00: one 0xFF data byte; anything else: a marker.
        size_t q = pos_ + 1;
        while (q < size_ && data_[q] == 0xFF) ++q;
        if (q < size_ && data_[q] == 0x00) {
          pos_ = q + 1;
        } else {
          if (q >= size_) pos_ = size_;  // 0xFFs and then nothing: the data is cut
          stopped_ = true;
          byte = 0;
        }
      }
    } else {
      stopped_ = true;
    }
    if (stopped_) pad_ += 8;
    buf_ |= static_cast<uint64_t>(byte) << (56 - bits_);
    bits_ += 8;
  }
}

int BitReader::decodeSlow(const HuffmanTable& t) {
  if (bits_ < 16) fill();
  const int32_t code16 = static_cast<int32_t>(buf_ >> 48);
  for (int len = HuffmanTable::kFastBits + 1; len <= 16; ++len) {
    const int32_t code = code16 >> (16 - len);
    if (code <= t.maxcode[len]) {
      consume(len);
      return t.symbols[code + t.valoffset[len]];
    }
  }
  if (bits_ - pad_ < 16) ranOut();
  jpegInvalid("corrupt entropy-coded data: a Huffman code that the scan's table does not hold");
}

void BitReader::ranOut() const {
  jpegInvalid(pos_ >= size_ ? "truncated: the entropy-coded data ends inside a block"
                            : "corrupt entropy-coded data: a marker interrupts a block");
}

size_t BitReader::skipToMarker() {
  buf_ = 0;
  bits_ = 0;
  pad_ = 0;
  // stopped_: pos_ is at the marker's 0xFF (or the end). Otherwise skip what is left, as
  // libjpeg-turbo's next_marker does (it warns of extraneous bytes).
  size_t p = pos_;
  while (p < size_) {
    if (data_[p] != 0xFF) {
      ++p;
      continue;
    }
    size_t q = p + 1;
    while (q < size_ && data_[q] == 0xFF) ++q;
    if (q < size_ && data_[q] == 0x00) {
      p = q + 1;
      continue;
    }
    return p;
  }
  return size_;
}

bool decodeBlock(BitReader& br, const HuffmanTable& dc, const HuffmanTable& ac, int32_t& pred, int16_t coef[64]) {
  std::memset(coef, 0, 64 * sizeof(int16_t));
  int s = br.decode(dc);
  int diff = 0;
  if (s != 0) diff = extend(br.bits(s), s);
  if ((pred >= 0 && diff > std::numeric_limits<int32_t>::max() - pred) ||
      (pred < 0 && diff < std::numeric_limits<int32_t>::min() - pred))
    jpegInvalid("corrupt entropy-coded data: the DC coefficient overflows");
  pred += diff;
  coef[0] = static_cast<int16_t>(static_cast<uint16_t>(pred));  // JCOEF: the low 16 bits
  bool anyAc = false;
  for (int k = 1; k < 64; ++k) {
    const int rs = br.decode(ac);
    const int r = rs >> 4;
    s = rs & 15;
    if (s != 0) {
      k += r;
      coef[kNaturalOrder[k]] = static_cast<int16_t>(extend(br.bits(s), s));
      anyAc = true;
    } else {
      if (r != 15) break;
      k += 15;
    }
  }
  return anyAc;
}

}  // namespace craftgrad
