// The Sigma prefilter of the query worker (decision 70).
//
// A rule loaded from a Sigma file keeps its parsed detection
// (Rule::sigma_detection). Before the worker runs such a rule's SQL over a
// batch (or a scan's processes) in `exec_events`, it evaluates the detection
// in C++ (EvaluateSigma, the SQL's exact semantics) over the same rows, read
// once per batch for all Sigma rules; when no row matches, the SQL would
// return nothing and is not run. The SQL stays what users see, test and
// audit, and what runs whenever a row does match. sigma_corpus_test and
// rule_runner_test prove the findings identical with and without it.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "sentinel/base/status.h"
#include "sentinel/detection/sigma.h"
#include "sentinel/storage/sqlite.h"

namespace sentinel::detection {

// True when the evaluator's reading of `expr` is SQLite's for every value
// (what the prefilter needs): its wildcard patterns are ASCII. SQLite's LIKE
// compares decoded characters and decodes overlong UTF-8 forms too, so a
// non-ASCII pattern could match a value the byte-wise evaluator rejects;
// such a rule runs its SQL over every batch.
bool SigmaPrefilterApplies(const SigmaExpr& expr);

// A detection tree as bytes for the worker's request, and back (regular
// expressions compiled again, with regexp()'s limits). Decoding refuses
// malformed or too deeply nested input with Internal.
void EncodeSigmaExpr(const SigmaExpr& expr, std::string* out);
Result<SigmaExpr> DecodeSigmaExpr(std::string_view bytes);

// A decoded detection ready for many events (PrepareSigmaExpr done).
Result<SigmaExpr> DecodePreparedSigmaExpr(std::string_view bytes);

// The Sigma fields of the rows of `exec_events`, as read and folded.
struct SigmaBatch {
  std::vector<SigmaEvent> events;
  std::vector<SigmaEvent> folded;  // FoldSigmaEvent of each
};

// The Sigma fields of every row of `exec_events` on `db`. FailedPrecondition
// when a value holds a NUL byte (LIKE and regexp() would read it
// differently): the caller then runs the SQL without the prefilter.
Result<SigmaBatch> ReadSigmaEvents(storage::Database& db);

// True when `expr` (prepared) matches at least one event of `batch`.
bool AnySigmaMatch(const SigmaExpr& expr, const SigmaBatch& batch);

}  // namespace sentinel::detection
