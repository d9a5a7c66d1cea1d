#include "jpeg_idct_ifast.h"

#include <cstring>

namespace craftgrad {

namespace {

// 16-bit word arithmetic as SSE2 does it: sums wrap, products keep the low or the high word.
inline int16_t add(int16_t a, int16_t b) { return static_cast<int16_t>(static_cast<uint16_t>(a + b)); }
inline int16_t sub(int16_t a, int16_t b) { return static_cast<int16_t>(static_cast<uint16_t>(a - b)); }
inline int16_t mullo(int16_t a, int16_t b) { return static_cast<int16_t>(static_cast<uint16_t>(a * b)); }
inline int16_t mulhi(int16_t a, int16_t b) { return static_cast<int16_t>((static_cast<int32_t>(a) * b) >> 16); }
inline int16_t shl2(int16_t a) { return static_cast<int16_t>(static_cast<uint16_t>(static_cast<uint16_t>(a) << 2)); }

// FIX(x) with 8 fractional bits, pre-shifted by 6 so that pmulhw of (v << 2) gives v·c/256.
constexpr int16_t kF1414 = 362 << 6;          // 1.414213562
constexpr int16_t kF1847 = 473 << 6;          // 1.847759065
constexpr int16_t kMF1613 = -((669 - 256) << 6);  // -(2.613125930 - 1): the remaining -z10 is added apart
constexpr int16_t kF1082 = 277 << 6;          // 1.082392200

// One 1-D pass over 8 vectors of 8 lanes: in[k] holds input k of every lane's transform.
inline void pass(const int16_t in[8][8], int16_t out[8][8]) {
  for (int l = 0; l < 8; ++l) {
    // even part
    const int16_t tmp10 = add(in[0][l], in[4][l]);
    const int16_t tmp11 = sub(in[0][l], in[4][l]);
    const int16_t tmp13 = add(in[2][l], in[6][l]);
    const int16_t tmp12 = sub(mulhi(shl2(sub(in[2][l], in[6][l])), kF1414), tmp13);
    const int16_t e0 = add(tmp10, tmp13), e3 = sub(tmp10, tmp13);
    const int16_t e1 = add(tmp11, tmp12), e2 = sub(tmp11, tmp12);
    // odd part
    const int16_t z13 = add(in[5][l], in[3][l]);
    const int16_t z10 = sub(in[5][l], in[3][l]);
    const int16_t z11 = add(in[1][l], in[7][l]);
    const int16_t z12 = sub(in[1][l], in[7][l]);
    const int16_t o7 = add(z11, z13);
    const int16_t o11 = mulhi(shl2(sub(z11, z13)), kF1414);
    const int16_t z10s = shl2(z10), z12s = shl2(z12);
    const int16_t z5 = mulhi(add(z10s, z12s), kF1847);
    const int16_t o10 = sub(mulhi(z12s, kF1082), z5);
    const int16_t o12 = add(sub(mulhi(z10s, kMF1613), z10), z5);
    const int16_t o6 = sub(o12, o7);
    const int16_t o5 = sub(o11, o6);
    const int16_t o4 = add(o10, o5);
    out[0][l] = add(e0, o7);
    out[7][l] = sub(e0, o7);
    out[1][l] = add(e1, o6);
    out[6][l] = sub(e1, o6);
    out[2][l] = add(e2, o5);
    out[5][l] = sub(e2, o5);
    out[4][l] = add(e3, o4);
    out[3][l] = sub(e3, o4);
  }
}

// psraw 5, packsswb, + 128.
inline uint8_t toSample(int16_t v) {
  int s = v >> 5;
  s = s < -128 ? -128 : (s > 127 ? 127 : s);
  return static_cast<uint8_t>(s + 128);
}

}  // namespace

void ifastMultipliers(const uint16_t quant[64], int16_t mult[64]) {
  // aanscale[u][v] = 2^14 · s(u) · s(v), s(0) = 1, s(k) = cos(kπ/16)·√2 (jddctmgr.c).
  static constexpr int32_t kAanScale[64] = {
      16384, 22725, 21407, 19266, 16384, 12873, 8867,  4520,  22725, 31521, 29692, 26722, 22725,
      17855, 12299, 6270,  21407, 29692, 27969, 25172, 21407, 16819, 11585, 5906,  19266, 26722,
      25172, 22654, 19266, 15137, 10426, 5315,  16384, 22725, 21407, 19266, 16384, 12873, 8867,
      4520,  12873, 17855, 16819, 15137, 12873, 10114, 6967,  3552,  8867,  12299, 11585, 10426,
      8867,  6967,  4799,  2446,  4520,  6270,  5906,  5315,  4520,  3552,  2446,  1247};
  for (int i = 0; i < 64; ++i) {
    const int64_t v = (static_cast<int64_t>(quant[i]) * kAanScale[i] + (1 << 11)) >> 12;
    mult[i] = static_cast<int16_t>(static_cast<uint16_t>(v));
  }
}

void idctIfast(const int16_t coef[64], const int16_t mult[64], uint8_t* out, ptrdiff_t stride) {
  int16_t in[8][8], ws[8][8], wt[8][8], res[8][8];
  // Pass 1, columns: lanes are columns, in[r] the dequantised row r (pmullw).
  for (int r = 0; r < 8; ++r)
    for (int c = 0; c < 8; ++c) in[r][c] = mullo(coef[r * 8 + c], mult[r * 8 + c]);
  pass(in, ws);  // ws[r][c]
  // Pass 2, rows: lanes are rows, wt[k][r] = ws[r][k].
  for (int r = 0; r < 8; ++r)
    for (int k = 0; k < 8; ++k) wt[k][r] = ws[r][k];
  pass(wt, res);  // res[k][r]: sample (r, k)
  for (int r = 0; r < 8; ++r) {
    uint8_t* row = out + r * stride;
    for (int k = 0; k < 8; ++k) row[k] = toSample(res[k][r]);
  }
}

void idctIfastDcOnly(int16_t dc, int16_t mult0, uint8_t* out, ptrdiff_t stride) {
  // Both passes carry the dequantised DC through unchanged (every other input is 0).
  const uint8_t v = toSample(mullo(dc, mult0));
  for (int r = 0; r < 8; ++r) std::memset(out + r * stride, v, 8);
}

}  // namespace craftgrad
