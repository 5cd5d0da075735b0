// Helpers shared by the Sigma parser and the SQL generator (sigma.h).
#pragma once

#include <vector>

#include "sentinel/detection/sigma.h"

namespace sentinel::detection::sigma_internal {

// AND / OR of `terms`, flattening nested nodes of the same op; one term is
// returned as is.
SigmaExpr MakeOp(SigmaExpr::Op op, std::vector<SigmaExpr> terms);

// ProcessId, ParentProcessId, LogonId: integer columns.
bool IsNumericField(SigmaField f);

// Sorts the terms of every AND and OR cheapest first (numbers and
// existence, then exact, prefix, suffix and substring patterns, regular
// expressions last; long value lists after short ones; negations after the
// positive terms), so the SQL and the
// C++ evaluator stop at the first deciding term.
void OrderCheapFirst(SigmaExpr* expr);

// The estimated cost of evaluating `expr` on one event.
int Cost(const SigmaExpr& expr);

}  // namespace sentinel::detection::sigma_internal
