#include "tests/integration/browser.h"

#include <zlib.h>

#include <cstdlib>
#include <unordered_set>

#include "sentinel/testing/temp_dir.h"

namespace sentinel::itest {
namespace {

uint32_t BigEndian32(const std::string& s, size_t at) {
  return (static_cast<uint32_t>(static_cast<unsigned char>(s[at])) << 24) |
         (static_cast<uint32_t>(static_cast<unsigned char>(s[at + 1])) << 16) |
         (static_cast<uint32_t>(static_cast<unsigned char>(s[at + 2])) << 8) |
         static_cast<uint32_t>(static_cast<unsigned char>(s[at + 3]));
}

// Undoes the PNG row filters (types 0-4, one byte before each row) into `pixels`.
bool Unfilter(const std::vector<unsigned char>& data, uint32_t width, uint32_t height, size_t bpp,
              std::vector<unsigned char>& pixels) {
  const size_t stride = static_cast<size_t>(width) * bpp;
  pixels.assign(stride * height, 0);
  for (uint32_t y = 0; y < height; ++y) {
    const unsigned char filter = data[y * (stride + 1)];
    const unsigned char* in = &data[y * (stride + 1) + 1];
    unsigned char* out = &pixels[y * stride];
    const unsigned char* up = y > 0 ? &pixels[(y - 1) * stride] : nullptr;
    for (size_t x = 0; x < stride; ++x) {
      const int a = x >= bpp ? out[x - bpp] : 0;
      const int b = up != nullptr ? up[x] : 0;
      const int c = (up != nullptr && x >= bpp) ? up[x - bpp] : 0;
      int pred = 0;
      switch (filter) {
        case 0: pred = 0; break;
        case 1: pred = a; break;
        case 2: pred = b; break;
        case 3: pred = (a + b) / 2; break;
        case 4: {
          const int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
          pred = (pa <= pb && pa <= pc) ? a : (pb <= pc ? b : c);
          break;
        }
        default: return false;
      }
      out[x] = static_cast<unsigned char>(in[x] + pred);
    }
  }
  return true;
}

}  // namespace

size_t CountOf(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + 1)) ++n;
  return n;
}

std::string ChromiumPath() {
  for (const char* p : {"/usr/bin/chromium", "/usr/bin/chromium-browser"}) {
    if (testing::FileExists(p)) return p;
  }
  return "";
}

testing::RunResult RunChromium(const std::string& profile_dir, const std::vector<std::string>& args,
                               const std::string& url, const std::vector<std::string>& env) {
  std::vector<std::string> argv{"/usr/bin/timeout",
                                "180",
                                ChromiumPath(),
                                "--headless",
                                "--no-sandbox",  // run as root in CI; the page is our own
                                "--disable-gpu",
                                "--no-first-run",
                                "--disable-extensions",
                                "--disable-background-networking",
                                "--user-data-dir=" + profile_dir,
                                "--virtual-time-budget=15000"};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back(url);
  return testing::Run(argv, env);
}

PngInfo ReadPng(const std::string& path) {
  PngInfo info;
  const std::string s = testing::ReadFile(path);
  if (s.size() < 33 || s.compare(0, 8, "\x89PNG\r\n\x1a\n") != 0) return {0, 0, 0, "not a PNG"};
  info.width = BigEndian32(s, 16);
  info.height = BigEndian32(s, 20);
  const int depth = static_cast<unsigned char>(s[24]), type = static_cast<unsigned char>(s[25]);
  if (depth != 8 || (type != 2 && type != 6) || s[28] != 0) {
    info.error =
        "unexpected PNG format (depth " + std::to_string(depth) + ", type " + std::to_string(type) + ")";
    return info;
  }
  const size_t bpp = type == 6 ? 4 : 3;
  std::string idat;
  for (size_t at = 8; at + 12 <= s.size();) {
    const uint32_t len = BigEndian32(s, at);
    if (at + 12 + len > s.size()) break;
    if (s.compare(at + 4, 4, "IDAT") == 0) idat.append(s, at + 8, len);
    at += 12 + len;
  }
  std::vector<unsigned char> raw((static_cast<size_t>(info.width) * bpp + 1) * info.height);
  uLongf raw_len = raw.size();
  if (::uncompress(raw.data(), &raw_len, reinterpret_cast<const Bytef*>(idat.data()), idat.size()) != Z_OK ||
      raw_len != raw.size()) {
    info.error = "IDAT does not inflate to the image's size";
    return info;
  }
  std::vector<unsigned char> pixels;
  if (!Unfilter(raw, info.width, info.height, bpp, pixels)) {
    info.error = "unknown row filter";
    return info;
  }
  std::unordered_set<uint32_t> colours;
  for (size_t i = 0; i + bpp <= pixels.size(); i += bpp) {
    colours.insert((uint32_t{pixels[i]} << 16) | (uint32_t{pixels[i + 1]} << 8) | pixels[i + 2]);
  }
  info.colours = colours.size();
  return info;
}

}  // namespace sentinel::itest
