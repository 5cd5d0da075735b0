// Private to sentinelcli/output: the concrete RowWriters and the base class
// that gives them one state machine, one stream check and one exception
// barrier.
#pragma once

#include <cstddef>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "sentinel/base/status.h"
#include "sentinelcli/output/row_writer.h"
#include "sentinelcli/output/terminal.h"

namespace sentinel::cli::internal {

// Maps a failed stream to a Status naming the output; `err` is errno observed
// right after the failing write (0 if unknown).
Status OutputError(int err);

// Implements Begin/Row/End once: call order and cell counts are checked, the
// stream is checked after every call (errors are sticky), and no exception
// escapes. Subclasses only write.
class StreamRowWriter : public RowWriter {
 public:
  explicit StreamRowWriter(std::ostream& out) : out_(out) {}
  StreamRowWriter(const StreamRowWriter&) = delete;
  StreamRowWriter& operator=(const StreamRowWriter&) = delete;

  Status Begin(const std::vector<std::string>& columns) final;
  Status Row(const std::vector<Cell>& cells) final;
  Status End() final;

 protected:
  virtual void DoBegin(const std::vector<std::string>& columns) = 0;
  virtual void DoRow(const std::vector<Cell>& cells) = 0;
  virtual void DoEnd() = 0;

  void Emit(std::string_view s) { out_.write(s.data(), static_cast<std::streamsize>(s.size())); }
  size_t column_count() const { return column_count_; }

 private:
  enum class State { kNew, kOpen, kDone };
  template <typename F>
  Status Run(F&& body);

  std::ostream& out_;
  State state_ = State::kNew;
  size_t column_count_ = 0;
  Status error_;  // sticky once a write failed
};

std::unique_ptr<RowWriter> MakeJsonWriter(std::ostream& out, bool lines);
std::unique_ptr<RowWriter> MakeCsvWriter(std::ostream& out);
// `trailer`: print "(N rows)" after the table (off for WriteObject).
std::unique_ptr<RowWriter> MakeTableWriter(std::ostream& out, const TerminalInfo& term, bool trailer);

}  // namespace sentinel::cli::internal
