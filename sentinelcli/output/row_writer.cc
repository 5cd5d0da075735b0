#include "sentinelcli/output/row_writer.h"

#include <cerrno>
#include <charconv>
#include <cstdint>
#include <exception>
#include <limits>
#include <new>
#include <ostream>

#include <nlohmann/json.hpp>

#include "sentinel/base/strings.h"
#include "sentinelcli/output/internal/value_format.h"
#include "sentinelcli/output/internal/writers.h"

namespace sentinel::cli {

Result<Format> ParseFormat(std::string_view name, bool allow_jsonl) {
  const std::string lower = ToLower(name);
  if (lower == "table") return Format::kTable;
  if (lower == "json") return Format::kJson;
  if (lower == "csv") return Format::kCsv;
  if (lower == "jsonl") {
    if (allow_jsonl) return Format::kJsonl;
    return InvalidArgumentError("format " + QuoteForMessage(name) +
                                " is only supported by export (expected table, json or csv)");
  }
  return InvalidArgumentError(
      "unknown format " + QuoteForMessage(name) +
      (allow_jsonl ? " (expected table, json, jsonl or csv)" : " (expected table, json or csv)"));
}

std::string_view FormatName(Format format) {
  switch (format) {
    case Format::kTable: return "table";
    case Format::kJson: return "json";
    case Format::kJsonl: return "jsonl";
    case Format::kCsv: return "csv";
  }
  return "table";
}

std::unique_ptr<RowWriter> MakeRowWriter(Format format, std::ostream& out, const TerminalInfo& term) {
  switch (format) {
    case Format::kJson: return internal::MakeJsonWriter(out, /*lines=*/false);
    case Format::kJsonl: return internal::MakeJsonWriter(out, /*lines=*/true);
    case Format::kCsv: return internal::MakeCsvWriter(out);
    case Format::kTable: break;
  }
  return internal::MakeTableWriter(out, term, /*trailer=*/true);
}

namespace {

void AppendNewline(std::string& out, int indent, int depth) {
  out += '\n';
  out.append(static_cast<size_t>(indent) * static_cast<size_t>(depth), ' ');
}

template <typename J>
void AppendJson(std::string& out, const J& j, int indent, int depth);

// An array ([a,b]) or object ({"k":v}); with indent >= 0 one element or
// member per line, members as "k": v.
template <typename J>
void AppendJsonContainer(std::string& out, const J& j, int indent, int depth) {
  const bool object = j.is_object();
  if (j.empty()) {
    out += object ? "{}" : "[]";
    return;
  }
  out += object ? '{' : '[';
  bool first = true;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!first) out += ',';
    first = false;
    if (indent >= 0) AppendNewline(out, indent, depth + 1);
    if (object) {
      internal::AppendJsonString(out, it.key());
      out += indent >= 0 ? ": " : ":";
    }
    AppendJson(out, it.value(), indent, depth + 1);
  }
  if (indent >= 0) AppendNewline(out, indent, depth);
  out += object ? '}' : ']';
}

// Serialises by hand rather than with dump() so strings get exactly the same
// escaping as result rows (unsafe code points as \u, invalid UTF-8 as
// U+FFFD) and nothing can throw. indent < 0: compact.
template <typename J>
void AppendJson(std::string& out, const J& j, int indent, int depth) {
  switch (j.type()) {
    case nlohmann::json::value_t::null:
    case nlohmann::json::value_t::discarded: out += "null"; return;
    case nlohmann::json::value_t::boolean: out += j.template get<bool>() ? "true" : "false"; return;
    case nlohmann::json::value_t::number_integer:
      internal::AppendInteger(out, j.template get<int64_t>());
      return;
    case nlohmann::json::value_t::number_unsigned: out += std::to_string(j.template get<uint64_t>()); return;
    case nlohmann::json::value_t::number_float:
      internal::AppendJsonReal(out, j.template get<double>());
      return;
    case nlohmann::json::value_t::string:
      internal::AppendJsonString(out, j.template get_ref<const typename J::string_t&>());
      return;
    case nlohmann::json::value_t::binary: {
      const auto& bytes = j.get_binary();
      out += '"';
      internal::AppendHex(out, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
      out += '"';
      return;
    }
    case nlohmann::json::value_t::array:
    case nlohmann::json::value_t::object: AppendJsonContainer(out, j, indent, depth); return;
  }
  out += "null";
}

template <typename J>
Status WriteLeaf(const J& v, const std::string& key, RowWriter& writer) {
  Cell value;
  std::string text;  // must outlive Row
  switch (v.type()) {
    case nlohmann::json::value_t::null:
    case nlohmann::json::value_t::discarded: break;
    case nlohmann::json::value_t::boolean:
      value = Cell::Text(v.template get<bool>() ? "true" : "false");
      break;
    case nlohmann::json::value_t::number_integer: value = Cell::Integer(v.template get<int64_t>()); break;
    case nlohmann::json::value_t::number_unsigned: {
      const uint64_t u = v.template get<uint64_t>();
      if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        value = Cell::Integer(static_cast<int64_t>(u));
      } else {
        text = std::to_string(u);
        value = Cell::Text(text);
      }
      break;
    }
    case nlohmann::json::value_t::number_float: value = Cell::Real(v.template get<double>()); break;
    case nlohmann::json::value_t::string:
      value = Cell::Text(v.template get_ref<const typename J::string_t&>());
      break;
    case nlohmann::json::value_t::binary: {
      const auto& bytes = v.get_binary();
      value = Cell::Blob(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
      break;
    }
    case nlohmann::json::value_t::array:
    case nlohmann::json::value_t::object:
      AppendJson(text, v, -1, 0);
      value = Cell::Text(text);
      break;
  }
  return writer.Row({Cell::Text(key), value});
}

// One row per leaf; nested objects become dotted keys.
template <typename J>
Status Flatten(const J& object, std::string& key, RowWriter& writer) {
  for (auto it = object.begin(); it != object.end(); ++it) {
    const size_t mark = key.size();
    if (!key.empty()) key += '.';
    key += it.key();
    const J& v = it.value();
    Status s = v.is_object() && !v.empty() ? Flatten(v, key, writer) : WriteLeaf(v, key, writer);
    key.resize(mark);
    RETURN_IF_ERROR(s);
  }
  return Status::Ok();
}

template <typename J>
Status WriteObjectImpl(Format format, std::ostream& out, const J& object, const TerminalInfo& term) {
  if (!object.is_object()) {
    return InvalidArgumentError(std::string("WriteObject needs a JSON object, got ") + object.type_name());
  }
  try {
    if (format == Format::kJson || format == Format::kJsonl) {
      std::string doc;
      AppendJson(doc, object, format == Format::kJson ? 2 : -1, 0);
      doc += '\n';
      errno = 0;
      out.write(doc.data(), static_cast<std::streamsize>(doc.size()));
      out.flush();
      if (out.fail()) return internal::OutputError(errno);
      return Status::Ok();
    }
    std::unique_ptr<RowWriter> writer = format == Format::kCsv
                                            ? internal::MakeCsvWriter(out)
                                            : internal::MakeTableWriter(out, term, /*trailer=*/false);
    RETURN_IF_ERROR(writer->Begin({"key", "value"}));
    std::string key;
    RETURN_IF_ERROR(Flatten(object, key, *writer));
    return writer->End();
  } catch (const std::bad_alloc&) {
    return ResourceExhaustedError("writing output: out of memory");
  } catch (const std::exception& e) {
    if (out.fail()) return internal::OutputError(errno);
    return InternalError(std::string("writing output: ") + e.what());
  }
}

}  // namespace

Status WriteObject(Format format, std::ostream& out, const nlohmann::json& object, const TerminalInfo& term) {
  return WriteObjectImpl(format, out, object, term);
}

Status WriteObject(Format format, std::ostream& out, const nlohmann::ordered_json& object,
                   const TerminalInfo& term) {
  return WriteObjectImpl(format, out, object, term);
}

}  // namespace sentinel::cli
