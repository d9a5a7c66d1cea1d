#include "jpeg_decoder.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "jpeg_error.h"
#include "jpeg_huffman.h"
#include "jpeg_idct_ifast.h"
#include "jpeg_output.h"

namespace craftgrad {

namespace {

// Zig-zag position → row-major position (T.81 figure A.6): DQT lists tables in zig-zag order.
constexpr uint8_t kZigZag[64] = {0,  1,  8,  16, 9,  2,  3,  10, 17, 24, 32, 25, 18, 11, 4,  5,
                                 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6,  7,  14, 21, 28,
                                 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
                                 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63};

std::string hex2(int v) {
  static const char* d = "0123456789abcdef";
  return std::string("0x") + d[(v >> 4) & 15] + d[v & 15];
}

std::string markerName(int m) {
  if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) return "SOF" + std::to_string(m - 0xC0);
  if (m >= 0xD0 && m <= 0xD7) return "RST" + std::to_string(m - 0xD0);
  if (m >= 0xE0 && m <= 0xEF) return "APP" + std::to_string(m - 0xE0);
  switch (m) {
    case 0xC4: return "DHT";
    case 0xCC: return "DAC";
    case 0xD8: return "SOI";
    case 0xD9: return "EOI";
    case 0xDA: return "SOS";
    case 0xDB: return "DQT";
    case 0xDC: return "DNL";
    case 0xDD: return "DRI";
    case 0xFE: return "COM";
    default: return "marker " + hex2(m);
  }
}

struct Component {
  int id = 0, h = 1, v = 1, tq = 0;
  int width = 0, height = 0;      // real samples (downsampled_width/height)
  int blocksW = 0, blocksH = 0;   // blocks allocated: the interleaved MCU grid's
  std::vector<uint8_t> plane;     // blocksW·8 × blocksH·8 samples
  bool scanned = false;
  int16_t mult[64];
};

}  // namespace

struct JpegDecoder::State {
  const uint8_t* data;
  size_t size;
  size_t pos = 0;  // the next unread byte between segments
  bool sawJfif = false, sawAdobe = false;
  int adobeTransform = 0;
  int restartInterval = 0;
  std::vector<Component> comps;
  int width = 0, height = 0;
  int hmax = 1, vmax = 1, mcusX = 0, mcusY = 0;
  HuffmanTable dcTables[4], acTables[4];
  uint16_t quant[4][64];
  bool quantDefined[4] = {false, false, false, false};

  State(const uint8_t* d, size_t n) : data(d), size(n) {}

  // The next marker's code, skipping bytes that are not one (libjpeg-turbo's next_marker
  // skips them with a warning) and 0xFF fill bytes. pos ends after the code.
  int nextMarker() {
    for (;;) {
      while (pos < size && data[pos] != 0xFF) ++pos;
      while (pos < size && data[pos] == 0xFF) ++pos;
      if (pos >= size) jpegInvalid("truncated: the data ends before the EOI marker");
      const int code = data[pos++];
      if (code != 0) return code;
    }
  }

  // A marker segment's payload [pos, pos + len), after its 2-byte length; pos moves past it.
  size_t segment(int marker, size_t& len) {
    if (pos + 2 > size) jpegInvalid("truncated in the length of the " + markerName(marker) + " segment");
    const size_t l = (static_cast<size_t>(data[pos]) << 8) | data[pos + 1];
    if (l < 2) jpegInvalid("the " + markerName(marker) + " segment's length is " + std::to_string(l));
    if (pos + l > size) jpegInvalid("truncated inside the " + markerName(marker) + " segment");
    const size_t start = pos + 2;
    len = l - 2;
    pos += l;
    return start;
  }

  // Markers that may appear anywhere between segments; returns false for others.
  bool tableOrMisc(int m) {
    size_t len = 0;
    if (m == 0xC4) {  // DHT
      const size_t p0 = segment(m, len);
      size_t p = p0;
      const size_t end = p0 + len;
      while (p < end) {
        if (p + 17 > end) jpegInvalid("bad Huffman table: the DHT segment ends inside a table header");
        const int tc = data[p] >> 4, th = data[p] & 15;
        if (tc > 1 || th > 3) jpegInvalid("bad Huffman table: class " + std::to_string(tc) + ", index " + std::to_string(th));
        uint8_t counts[16];
        int total = 0;
        for (int i = 0; i < 16; ++i) total += counts[i] = data[p + 1 + i];
        p += 17;
        if (total > 256 || p + static_cast<size_t>(total) > end)
          jpegInvalid("bad Huffman table: " + std::to_string(total) + " symbols in a segment that does not hold them");
        buildHuffmanTable(tc == 0 ? dcTables[th] : acTables[th], counts, data + p, total, tc == 0);
        p += static_cast<size_t>(total);
      }
      return true;
    }
    if (m == 0xDB) {  // DQT
      const size_t p0 = segment(m, len);
      size_t p = p0;
      const size_t end = p0 + len;
      while (p < end) {
        const int pq = data[p] >> 4, tq = data[p] & 15;
        if (pq > 1 || tq > 3) jpegInvalid("bad quantization table: precision " + std::to_string(pq) + ", index " + std::to_string(tq));
        ++p;
        const size_t need = pq ? 128 : 64;
        if (p + need > end) jpegInvalid("bad quantization table: the DQT segment ends inside table " + std::to_string(tq));
        for (int i = 0; i < 64; ++i)
          quant[tq][kZigZag[i]] = pq ? static_cast<uint16_t>((data[p + 2 * i] << 8) | data[p + 2 * i + 1]) : data[p + i];
        quantDefined[tq] = true;
        p += need;
      }
      return true;
    }
    if (m == 0xDD) {  // DRI
      const size_t p = segment(m, len);
      if (len != 2) jpegInvalid("the DRI segment's length is " + std::to_string(len + 2) + ", not 4");
      restartInterval = (data[p] << 8) | data[p + 1];
      return true;
    }
    if (m == 0xE0 || m == 0xEE) {  // APP0 (JFIF), APP14 (Adobe): what libjpeg-turbo reads of them
      const size_t p = segment(m, len);
      if (m == 0xE0 && len >= 14 && std::memcmp(data + p, "JFIF\0", 5) == 0) sawJfif = true;
      if (m == 0xEE && len >= 12 && std::memcmp(data + p, "Adobe", 5) == 0) {
        sawAdobe = true;
        adobeTransform = data[p + 11];
      }
      return true;
    }
    if ((m >= 0xE1 && m <= 0xEF) || m == 0xFE || m == 0xCC || m == 0xDC) {  // APPn, COM, DAC, DNL: skipped
      segment(m, len);
      return true;
    }
    if ((m >= 0xD0 && m <= 0xD7) || m == 0x01) return true;  // RSTn, TEM outside a scan: no payload, ignored
    return false;
  }

  void readFrame(int m) {
    if (m == 0xC2 || m == 0xC6 || m == 0xCA || m == 0xCE) jpegUnsupported("progressive JPEG (" + markerName(m) + ")");
    if (m == 0xC3 || m == 0xC7 || m == 0xCB || m == 0xCF) jpegUnsupported("lossless JPEG (" + markerName(m) + ")");
    if (m >= 0xC9) jpegUnsupported("arithmetic-coded JPEG (" + markerName(m) + ")");
    if (m == 0xC5) jpegUnsupported("hierarchical JPEG (" + markerName(m) + ")");
    size_t len = 0;
    const size_t p = segment(m, len);
    if (len < 6) jpegInvalid("the " + markerName(m) + " segment is too short");
    const int precision = data[p];
    height = (data[p + 1] << 8) | data[p + 2];
    width = (data[p + 3] << 8) | data[p + 4];
    const int nf = data[p + 5];
    if (precision != 8) jpegUnsupported(std::to_string(precision) + "-bit samples (8-bit only)");
    if (len != 6 + 3 * static_cast<size_t>(nf)) jpegInvalid("the " + markerName(m) + " segment's length does not match its " + std::to_string(nf) + " components");
    if (height == 0) jpegUnsupported("a height of 0 (given later by a DNL marker)");
    if (width == 0) jpegInvalid("the image's width is 0");
    if (nf == 0) jpegInvalid("the frame has no components");
    if (nf != 1 && nf != 3) jpegUnsupported(std::to_string(nf) + " components (1 or 3 only)");
    if (static_cast<int64_t>(width) * height > kJpegMaxPixels)
      jpegInvalid("the image is " + std::to_string(width) + "x" + std::to_string(height) + ", more than 2^26 pixels");
    comps.resize(static_cast<size_t>(nf));
    for (int i = 0; i < nf; ++i) {
      Component& c = comps[static_cast<size_t>(i)];
      const uint8_t* q = data + p + 6 + 3 * i;
      c.id = q[0];
      c.h = q[1] >> 4;
      c.v = q[1] & 15;
      c.tq = q[2];
      if (c.h < 1 || c.h > 4 || c.v < 1 || c.v > 4)
        jpegInvalid("component " + std::to_string(c.id) + " has sampling factors " + std::to_string(c.h) + "x" + std::to_string(c.v));
      if (c.tq > 3) jpegInvalid("component " + std::to_string(c.id) + " uses quantization table " + std::to_string(c.tq));
      for (int j = 0; j < i; ++j)
        if (comps[static_cast<size_t>(j)].id == c.id) jpegInvalid("two components have the id " + std::to_string(c.id));
      hmax = std::max(hmax, c.h);
      vmax = std::max(vmax, c.v);
    }
    mcusX = (width + 8 * hmax - 1) / (8 * hmax);
    mcusY = (height + 8 * vmax - 1) / (8 * vmax);
    int64_t minBlocks = 0;
    std::vector<PlaneView> views;
    for (Component& c : comps) {
      c.width = static_cast<int>((static_cast<int64_t>(width) * c.h + hmax - 1) / hmax);
      c.height = static_cast<int>((static_cast<int64_t>(height) * c.v + vmax - 1) / vmax);
      c.blocksW = mcusX * c.h;
      c.blocksH = mcusY * c.v;
      minBlocks += static_cast<int64_t>((c.width + 7) / 8) * ((c.height + 7) / 8);
      views.push_back(PlaneView{nullptr, 0, c.width, c.height, c.h, c.v});
    }
    checkSampling(views, hmax, vmax);
    // Every block costs at least 2 bits (a DC code and an end-of-block code, each ≥ 1 bit).
    const int64_t bitsLeft = 8 * static_cast<int64_t>(size - pos);
    if (2 * minBlocks > bitsLeft)
      jpegInvalid("truncated: the frame header declares " + std::to_string(width) + "x" + std::to_string(height) + " pixels (" +
                  std::to_string(minBlocks) + " blocks), more than the " + std::to_string(size - pos) + " bytes after it can hold");
  }

  // The SOS segment: which components, in which order, with which tables.
  void readScan(std::vector<int>& order, int td[4], int ta[4]) {
    size_t len = 0;
    const size_t p = segment(0xDA, len);
    if (len < 1) jpegInvalid("the SOS segment is empty");
    const int ns = data[p];
    if (ns < 1 || ns > 4 || len != 4 + 2 * static_cast<size_t>(ns))
      jpegInvalid("the SOS segment's length does not match its " + std::to_string(ns) + " components");
    int blocks = 0;
    for (int i = 0; i < ns; ++i) {
      const int id = data[p + 1 + 2 * i];
      int found = -1;
      for (size_t c = 0; c < comps.size(); ++c)
        if (comps[c].id == id) found = static_cast<int>(c);
      if (found < 0) jpegInvalid("the scan names component " + std::to_string(id) + ", which the frame does not have");
      for (int j = 0; j < i; ++j)
        if (order[static_cast<size_t>(j)] == found) jpegInvalid("the scan names component " + std::to_string(id) + " twice");
      if (comps[static_cast<size_t>(found)].scanned) jpegInvalid("component " + std::to_string(id) + " appears in two scans");
      order.push_back(found);
      td[i] = data[p + 2 + 2 * i] >> 4;
      ta[i] = data[p + 2 + 2 * i] & 15;
      if (td[i] > 3 || ta[i] > 3) jpegInvalid("the scan uses Huffman tables " + std::to_string(td[i]) + "/" + std::to_string(ta[i]) + " (at most 3)");
      // libjpeg-turbo fills tables 0 and 1 that no DHT defined with T.81 Annex K's (for
      // Motion-JPEG frames); this decoder does not, and leaves such files to another decoder.
      if (!dcTables[td[i]].defined || !acTables[ta[i]].defined)
        jpegUnsupported("the scan uses Huffman table " + std::to_string(!dcTables[td[i]].defined ? td[i] : ta[i]) +
                        ", which no DHT segment defines (Motion-JPEG's implicit tables)");
      const Component& c = comps[static_cast<size_t>(found)];
      if (!quantDefined[c.tq]) jpegInvalid("component " + std::to_string(id) + " uses quantization table " + std::to_string(c.tq) + ", which is not defined");
      blocks += c.h * c.v;
    }
    // (Ss, Se, Ah, Al are ignored in sequential mode, as libjpeg-turbo ignores them.)
    if (ns > 1 && blocks > 10) jpegInvalid("an MCU of " + std::to_string(blocks) + " blocks (at most 10)");
  }

  void decodeScan(const std::vector<int>& order, const int td[4], const int ta[4]) {
    const size_t ns = order.size();
    // Latch each component's quantization table now (libjpeg-turbo latches it at the
    // component's first scan).
    for (int ci : order) {
      Component& c = comps[static_cast<size_t>(ci)];
      ifastMultipliers(quant[c.tq], c.mult);
      if (c.plane.empty()) c.plane.assign(static_cast<size_t>(c.blocksW) * 8 * static_cast<size_t>(c.blocksH) * 8, 0);
    }
    int32_t pred[4] = {0, 0, 0, 0};
    // A single-component scan covers the component's own blocks, one per MCU (T.81 A.2.2).
    const Component& first = comps[static_cast<size_t>(order[0])];
    const int unitsX = ns == 1 ? (first.width + 7) / 8 : mcusX;
    const int unitsY = ns == 1 ? (first.height + 7) / 8 : mcusY;
    BitReader br(data, size, pos);
    int16_t coef[64];
    int restartsLeft = restartInterval, nextRst = 0;
    for (int my = 0; my < unitsY; ++my) {
      for (int mx = 0; mx < unitsX; ++mx) {
        if (restartInterval != 0) {
          if (restartsLeft == 0) {
            const size_t m = br.skipToMarker();
            if (m >= size) jpegInvalid("truncated: the data ends where restart marker RST" + std::to_string(nextRst) + " belongs");
            size_t q = m;
            while (q < size && data[q] == 0xFF) ++q;
            if (q >= size) jpegInvalid("truncated: the data ends where restart marker RST" + std::to_string(nextRst) + " belongs");
            if (data[q] != 0xD0 + nextRst)
              jpegInvalid("expected restart marker RST" + std::to_string(nextRst) + ", found " + markerName(data[q]));
            br.restartAt(q + 1);
            nextRst = (nextRst + 1) & 7;
            pred[0] = pred[1] = pred[2] = pred[3] = 0;
            restartsLeft = restartInterval;
          }
          --restartsLeft;
        }
        for (size_t k = 0; k < ns; ++k) {
          Component& c = comps[static_cast<size_t>(order[k])];
          const HuffmanTable& dc = dcTables[td[k]];
          const HuffmanTable& ac = acTables[ta[k]];
          const int bh = ns == 1 ? 1 : c.h, bv = ns == 1 ? 1 : c.v;
          const size_t stride = static_cast<size_t>(c.blocksW) * 8;
          for (int by = 0; by < bv; ++by) {
            for (int bx = 0; bx < bh; ++bx) {
              const size_t row = static_cast<size_t>(my * bv + by) * 8, col = static_cast<size_t>(mx * bh + bx) * 8;
              uint8_t* dst = c.plane.data() + row * stride + col;
              if (decodeBlock(br, dc, ac, pred[k], coef))
                idctIfast(coef, c.mult, dst, static_cast<ptrdiff_t>(stride));
              else
                idctIfastDcOnly(coef[0], c.mult[0], dst, static_cast<ptrdiff_t>(stride));
            }
          }
        }
      }
    }
    for (int ci : order) comps[static_cast<size_t>(ci)].scanned = true;
    pos = br.skipToMarker();
  }

  ColorTransform transform() const {
    if (comps.size() == 1) return ColorTransform::Gray;
    if (sawJfif) return ColorTransform::YCbCr;
    if (sawAdobe) return adobeTransform == 0 ? ColorTransform::Rgb : ColorTransform::YCbCr;
    if (comps[0].id == 82 && comps[1].id == 71 && comps[2].id == 66) return ColorTransform::Rgb;
    return ColorTransform::YCbCr;
  }
};

JpegDecoder::JpegDecoder(const uint8_t* data, size_t size) : s_(std::make_unique<State>(data, size)) {
  State& s = *s_;
  if (size < 2 || data[0] != 0xFF || data[1] != 0xD8)
    jpegInvalid(size < 2 ? "not a JPEG: fewer than 2 bytes" : "not a JPEG: starts with " + hex2(data[0]) + " " + hex2(data[1]) + ", not the SOI marker");
  s.pos = 2;
  for (;;) {
    const int m = s.nextMarker();
    if (s.tableOrMisc(m)) continue;
    if (m >= 0xC0 && m <= 0xCF) {
      s.readFrame(m);
      break;
    }
    if (m == 0xDA) jpegInvalid("a scan (SOS) before the frame header (SOF)");
    if (m == 0xD9) jpegInvalid("the EOI marker before any frame header: no image");
    if (m == 0xD8) jpegInvalid("a second SOI marker before the frame header");
    jpegInvalid("unexpected " + markerName(m) + " before the frame header");
  }
  info_.width = s.width;
  info_.height = s.height;
  info_.channels = s.comps.size() == 1 ? 1 : 3;
}

JpegDecoder::~JpegDecoder() = default;
JpegDecoder::JpegDecoder(JpegDecoder&&) noexcept = default;
JpegDecoder& JpegDecoder::operator=(JpegDecoder&&) noexcept = default;

void JpegDecoder::decode(uint8_t* out) {
  State& s = *s_;
  for (;;) {
    const int m = s.nextMarker();
    if (s.tableOrMisc(m)) continue;
    if (m == 0xDA) {
      std::vector<int> order;
      int td[4] = {0, 0, 0, 0}, ta[4] = {0, 0, 0, 0};
      s.readScan(order, td, ta);
      s.decodeScan(order, td, ta);
      continue;
    }
    if (m == 0xD9) break;
    if (m >= 0xC0 && m <= 0xCF) jpegInvalid("a second frame header (" + markerName(m) + ")");
    if (m == 0xD8) jpegInvalid("a second SOI marker inside the image");
    jpegInvalid("unexpected " + markerName(m) + " in the image");
  }
  std::vector<PlaneView> views;
  for (const Component& c : s.comps) {
    if (!c.scanned) jpegInvalid("the EOI marker comes before any scan of component " + std::to_string(c.id));
    views.push_back(PlaneView{c.plane.data(), c.blocksW * 8, c.width, c.height, c.h, c.v});
  }
  writePixels(views, s.hmax, s.vmax, s.width, s.height, s.transform(), out);
}

}  // namespace craftgrad
