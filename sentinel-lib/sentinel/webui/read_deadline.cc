#include "sentinel/webui/read_deadline.h"

#include "sentinel/base/time.h"

namespace sentinel::webui {

namespace {
// VM steps between two looks at the clock: a few microseconds of work.
constexpr int kStepsPerCheck = 1000;
}  // namespace

ReadDeadline::ReadDeadline(storage::Database& db, int64_t budget_ms)
    : db_(db), deadline_ms_(MonotonicMs() + budget_ms) {
  sqlite3_progress_handler(db_.raw(), kStepsPerCheck, &ReadDeadline::Progress, this);
}

ReadDeadline::~ReadDeadline() {
  sqlite3_progress_handler(db_.raw(), 0, nullptr, nullptr);
}

int ReadDeadline::Progress(void* self) {
  return MonotonicMs() > static_cast<ReadDeadline*>(self)->deadline_ms_ ? 1 : 0;
}

}  // namespace sentinel::webui
