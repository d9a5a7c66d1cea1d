// Huffman decoding of a baseline JPEG scan (ITU T.81 F.2.2): the tables of a DHT segment, the
// bit reader over entropy-coded bytes (0xFF00 stuffing, 0xFF fill bytes, stopping at a
// marker), and one block's 64 coefficients. The semantics follow libjpeg-turbo's jdhuff.c
// where a file can tell them apart: coefficients are 16-bit (JCOEF), the DC predictor is a
// 32-bit int whose overflow is an error, a run that passes coefficient 63 lands on 63
// (jpeg_natural_order's 16 extra entries). Where libjpeg-turbo warns and decodes anyway (a
// code no table holds, bits needed past the end of the data) this is an error.
#pragma once
#include <cstddef>
#include <cstdint>

namespace craftgrad {

struct HuffmanTable {
  static constexpr int kFastBits = 9;
  bool defined = false;
  // fast[the next 9 bits] = (code length << 8) | symbol for codes of at most 9 bits, else 0.
  uint16_t fast[1 << kFastBits];
  int32_t maxcode[17];    // the largest code of each length, -1 when none
  int32_t valoffset[17];  // symbol index = code + valoffset[length]
  uint8_t symbols[256];
};

// counts[l] codes of length l + 1 (l = 0..15) and their symbols, as a DHT segment lists them.
// Throws JpegError (Invalid) when the codes do not fit their lengths or, for a DC table, a
// symbol is above 15.
void buildHuffmanTable(HuffmanTable& table, const uint8_t counts[16], const uint8_t* symbols, int numSymbols, bool dc);

// Reads the entropy-coded bytes of a scan from `pos`. Past a marker (or the end of the
// data) it feeds zero bits, so that a code may be looked ahead at; consuming any of those
// bits is an error (the data ended inside a block).
class BitReader {
 public:
  BitReader(const uint8_t* data, size_t size, size_t pos) : data_(data), size_(size), pos_(pos) {}

  int decode(const HuffmanTable& t) {
    if (bits_ < 16) fill();
    const uint32_t look = static_cast<uint32_t>(buf_ >> (64 - HuffmanTable::kFastBits));
    const uint16_t e = t.fast[look];
    if (e != 0) {
      consume(e >> 8);
      return e & 0xFF;
    }
    return decodeSlow(t);
  }
  // The next n bits (1..16) as an unsigned number.
  int bits(int n) {
    if (bits_ < n) fill();
    const int v = static_cast<int>(buf_ >> (64 - n));
    consume(n);
    return v;
  }
  // After a restart interval or a scan: drops the bits left in the byte (and any bytes
  // before the next marker, as libjpeg-turbo does) and returns the marker's offset (its
  // 0xFF), or size when the data ends first.
  size_t skipToMarker();
  // Continues after a restart marker at `pos` (the byte after RSTn).
  void restartAt(size_t pos) {
    pos_ = pos;
    buf_ = 0;
    bits_ = 0;
    pad_ = 0;
    stopped_ = false;
  }

 private:
  void fill();
  int decodeSlow(const HuffmanTable& t);
  void consume(int n) {
    buf_ <<= n;
    bits_ -= n;
    if (bits_ < pad_) ranOut();
  }
  [[noreturn]] void ranOut() const;

  const uint8_t* data_;
  size_t size_;
  size_t pos_;          // the next byte to load
  uint64_t buf_ = 0;    // bits, most significant first
  int bits_ = 0;        // valid bits in buf_ (including pad_)
  int pad_ = 0;         // trailing zero bits fed past the data
  bool stopped_ = false;  // reached a marker or the end: pos_ stays there
};

// Decodes one block into coef (natural order, 64 entries, zeroed here). `pred` is the
// component's DC predictor. Returns whether any AC coefficient is nonzero.
bool decodeBlock(BitReader& br, const HuffmanTable& dc, const HuffmanTable& ac, int32_t& pred, int16_t coef[64]);

}  // namespace craftgrad
