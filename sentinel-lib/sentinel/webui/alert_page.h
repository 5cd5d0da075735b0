// One page of GET /api/alerts read from a store, and the answer for a store
// read that failed: the parts the agent (its event store) and the console
// (every host's alerts) share. Each side writes its own SELECT (its columns
// and WHERE clause differ); the named parameters are common:
//   :host :rule :status :since :until :q   one per filter of AlertQuery
//   :limit :offset                         the page
//
// Thread-safety: as the statement's connection.
#pragma once

#include <functional>
#include <string_view>

#include <nlohmann/json.hpp>

#include "sentinel/base/status.h"
#include "sentinel/storage/sqlite.h"
#include "sentinel/webui/alert_query.h"
#include "sentinel/webui/http.h"

namespace sentinel::webui {

// Binds the parameter of each filter `q` sets, :limit to q.limit + 1 (the
// extra row says whether a next page exists) and :offset.
Status BindAlertQuery(storage::Statement& st, const AlertQuery& q);

// Steps `st` (bound by BindAlertQuery) and returns {"alerts": [entry(row),
// ...], "limit", "offset", "more"}: at most q.limit entries, "more" when the
// store holds another.
Result<nlohmann::ordered_json> ReadAlertPage(
    storage::Statement& st, const AlertQuery& q,
    const std::function<nlohmann::ordered_json(storage::Statement&)>& entry);

// The 503 for a store read that failed: one that ran past kReadBudgetMs asks
// for narrower filters; any other names `store` ("event store", "console
// store") and the error. After any other failure the caller drops its
// connection (StoreReadTimedOut is false) and opens it again on the next
// request.
HttpResponse StoreReadFailure(const Status& s, std::string_view store);
bool StoreReadTimedOut(const Status& s);

}  // namespace sentinel::webui
