// Dequantisation and the inverse DCT of one 8×8 block as TensorFlow's decode_image runs it:
// libjpeg-turbo's JDCT_IFAST (the AA&N scaled integer IDCT, jidctfst.c) in the form its x86-64
// SIMD build executes it (simd/x86_64/jidctfst-sse2.asm, jsimd_idct_ifast_sse2, chosen by
// jddctmgr.c whenever SSE2 is present, i.e. on every x86-64 CPU): every value is a 16-bit
// word that wraps, the constant products are pmulhw of the operand shifted left by 2 with
// the constant shifted left by 6 (floor(x·c/256), as jidctfst.c's MULTIPLY with
// CONST_BITS 8 and no rounding), and the result is shifted right by 5, saturated to a signed
// byte and offset by 128. On the coefficients real encoders write this equals the C code
// (32-bit intermediates, range_limit table) exactly; the two differ only where 16 bits
// overflow (crafted quantisation tables or coefficients), and there this follows the SIMD
// path, as TensorFlow on x86-64 does. Written from the algorithm, not copied.
#pragma once
#include <cstddef>
#include <cstdint>

namespace craftgrad {

// The IFAST multipliers of a quantisation table (row-major): quant·aanscale rounded to 2
// fractional bits (IFAST_SCALE_BITS), kept as the 16-bit value libjpeg-turbo's SIMD build
// stores (its MULTIPLIER type is short).
void ifastMultipliers(const uint16_t quant[64], int16_t mult[64]);

// coef (row-major, 16-bit) → 8×8 samples at out with the given row stride.
void idctIfast(const int16_t coef[64], const int16_t mult[64], uint8_t* out, ptrdiff_t stride);

// The same for a block whose AC coefficients are all zero (every sample equal).
void idctIfastDcOnly(int16_t dc, int16_t mult0, uint8_t* out, ptrdiff_t stride);

}  // namespace craftgrad
