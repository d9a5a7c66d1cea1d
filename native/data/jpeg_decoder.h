// A baseline JPEG decoder that gives, bit for bit, what TensorFlow's tf.io.decode_image gives
// on x86-64: libjpeg-turbo with dct_method JDCT_IFAST and fancy upsampling (TF's
// decode_image_op.cc; `djpeg -dct fast`). Sequential Huffman-coded 8-bit frames (SOF0,
// SOF1) with 1 component (grey) or 3 (YCbCr, or RGB by an Adobe marker with transform 0 or
// component ids 'R','G','B', as libjpeg-turbo guesses), any integral sampling factors,
// restart intervals, components in one scan or several. Anything else (progressive,
// arithmetic, lossless, hierarchical, 12-bit, 2 or 4 components, scans without Huffman
// tables as Motion-JPEG writes them) is a JpegError of kind Unsupported; malformed bytes are
// a JpegError of kind Invalid naming the problem. Nothing is allocated before the frame
// header has been checked against the input's length: a block takes at least 2 bits, so the
// declared size is bounded by the bytes that follow it.
//
// Parts: jpeg_huffman (entropy decoding), jpeg_idct_ifast (dequantisation and IDCT, as
// libjpeg-turbo's SSE2 code computes it), jpeg_output (upsampling and colour conversion).
// No global state: calls on different threads are independent.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

namespace craftgrad {

struct JpegInfo {
  int width = 0;
  int height = 0;
  int channels = 0;  // 1 (grey) or 3 (RGB)
};

// The largest image decoded: width × height pixels (sharp's default limitInputPixels).
constexpr int64_t kJpegMaxPixels = int64_t{1} << 26;

class JpegDecoder {
 public:
  // Reads the markers up to and including the frame header; throws JpegError.
  JpegDecoder(const uint8_t* data, size_t size);
  ~JpegDecoder();
  JpegDecoder(JpegDecoder&&) noexcept;
  JpegDecoder& operator=(JpegDecoder&&) noexcept;

  const JpegInfo& info() const { return info_; }
  // Decodes into out (height × width × channels bytes, rows top to bottom); throws JpegError.
  // The input bytes must still be alive and unchanged.
  void decode(uint8_t* out);

 private:
  struct State;
  JpegInfo info_;
  std::unique_ptr<State> s_;
};

}  // namespace craftgrad
