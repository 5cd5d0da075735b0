#include "sentinel/webui/alert_page.h"

#include <string>
#include <utility>

#include "sentinel/webui/read_deadline.h"

namespace sentinel::webui {

Status BindAlertQuery(storage::Statement& st, const AlertQuery& q) {
  if (q.host) RETURN_IF_ERROR(st.BindText(st.ParameterIndex(":host"), *q.host));
  if (q.rule) RETURN_IF_ERROR(st.BindText(st.ParameterIndex(":rule"), *q.rule));
  if (q.status) RETURN_IF_ERROR(st.BindText(st.ParameterIndex(":status"), *q.status));
  if (q.since_ms) RETURN_IF_ERROR(st.BindInt(st.ParameterIndex(":since"), *q.since_ms));
  if (q.until_ms) RETURN_IF_ERROR(st.BindInt(st.ParameterIndex(":until"), *q.until_ms));
  if (q.text) RETURN_IF_ERROR(st.BindText(st.ParameterIndex(":q"), ContainsPattern(*q.text)));
  RETURN_IF_ERROR(st.BindInt(st.ParameterIndex(":limit"), q.limit + 1));
  return st.BindInt(st.ParameterIndex(":offset"), q.offset);
}

Result<nlohmann::ordered_json> ReadAlertPage(
    storage::Statement& st, const AlertQuery& q,
    const std::function<nlohmann::ordered_json(storage::Statement&)>& entry) {
  nlohmann::ordered_json alerts = nlohmann::ordered_json::array();
  bool more = false;
  while (true) {
    ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    if (static_cast<int64_t>(alerts.size()) == q.limit) {
      more = true;
      break;
    }
    alerts.push_back(entry(st));
  }
  nlohmann::ordered_json out;
  out["alerts"] = std::move(alerts);
  out["limit"] = q.limit;
  out["offset"] = q.offset;
  out["more"] = more;
  return out;
}

bool StoreReadTimedOut(const Status& s) {
  return s.code() == StatusCode::kDeadlineExceeded;
}

HttpResponse StoreReadFailure(const Status& s, std::string_view store) {
  if (StoreReadTimedOut(s)) {
    return JsonError(
        503, "the store read took longer than " + std::to_string(kReadBudgetMs) + " ms; narrow the filters");
  }
  return JsonError(503, std::string(store) + " unavailable: " + s.message());
}

}  // namespace sentinel::webui
