// A time bound on the store reads of one web request: while a ReadDeadline
// lives, SQLite interrupts any step on its connection that runs past the
// budget, and the step fails with DeadlineExceeded (storage/sqlite.h). The
// HTTP endpoint's single thread is never held longer than that by a search
// over a large store; detection and delivery use connections of their own and
// never wait on it.
//
// Thread-safety: one per connection, on the thread that uses the connection.
#pragma once

#include <cstdint>

#include "sentinel/storage/sqlite.h"

namespace sentinel::webui {

inline constexpr int64_t kReadBudgetMs = 2000;

class ReadDeadline {
 public:
  ReadDeadline(storage::Database& db, int64_t budget_ms = kReadBudgetMs);
  ~ReadDeadline();
  ReadDeadline(const ReadDeadline&) = delete;
  ReadDeadline& operator=(const ReadDeadline&) = delete;

 private:
  static int Progress(void* self);
  storage::Database& db_;
  int64_t deadline_ms_;  // monotonic
};

}  // namespace sentinel::webui
