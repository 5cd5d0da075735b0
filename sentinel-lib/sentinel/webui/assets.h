// The web UI's files (sentinel-lib/sentinel/webui/ui/), compiled into the
// binary at build time (cmake/EmbedWebUi.cmake): the agent and the console
// serve this one copy, and nothing is fetched from anywhere else (SPEC §16).
//
// Each file is served at /<its name>; "/" is /index.html. The page's script
// and style are files of their own (the Content-Security-Policy forbids
// inline ones) and every string it shows from the API goes through
// textContent / createTextNode (docs/web-ui.md "Escaping").
//
// Constant data; thread-safe.
#pragma once

#include <span>
#include <string_view>

#include "sentinel/webui/http.h"

namespace sentinel::webui {

struct Asset {
  std::string_view path;          // "/app.js"
  std::string_view content_type;  // with its charset
  std::string_view body;
};

// Every embedded file, by path.
std::span<const Asset> Assets();

// The file served at `path` ("/" is "/index.html"), or nullptr.
const Asset* FindAsset(std::string_view path);

// 200 with the file; revalidated on every use (Cache-Control: no-cache), so
// an upgraded binary's page is never mixed with an old script.
HttpResponse AssetResponse(const Asset& asset);

}  // namespace sentinel::webui
