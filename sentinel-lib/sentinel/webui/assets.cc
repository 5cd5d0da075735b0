#include "sentinel/webui/assets.h"

namespace sentinel::webui {

const Asset* FindAsset(std::string_view path) {
  if (path == "/") path = "/index.html";
  for (const Asset& a : Assets()) {
    if (a.path == path) return &a;
  }
  return nullptr;
}

HttpResponse AssetResponse(const Asset& asset) {
  HttpResponse r;
  r.code = 200;
  r.content_type = std::string(asset.content_type);
  r.body = std::string(asset.body);
  r.cache_control = "no-cache";
  return r;
}

}  // namespace sentinel::webui
