// What LinuxProcessSource reads of one process on one scan: a pure decision
// from what the scan observed and what is remembered of the instance
// (docs/collector.md explains the schedule). No I/O: unit-tested without /proc.
//
// It is taken in two steps because whether the process exec'd can depend on
// its exe link: PlanExeLink() says whether to read the link first; once it is
// read (or not), PlanReads() decides the rest.
#pragma once

#include <cstdint>
#include <string_view>

namespace sentinel::procmond {

// What tells one image of a process from another, as seen on a scan.
struct ImageMarks {
  bool from_kernel = false;  // seen in the kernel's sample (else /proc)
  std::string_view comm;
  uint64_t exec_sig = 0;  // 0: not shown
  uint64_t exe_key = 0;   // the kernel's executable identity (kernel only)
  bool owner_known = false;
  uint32_t owner_uid = 0, owner_gid = 0;  // of /proc/PID (/proc only)
};

struct ReadInputs {
  int32_t pid = 0;
  bool dead = false;  // zombie or dead: nothing left to read
  bool kernel_thread = false;
  ImageMarks now;               // as this scan sees the process
  bool fresh = true;            // first sight of the instance (pid, start time): nothing remembered
  ImageMarks last;              // as remembered of the instance
  uint64_t last_full_scan = 0;  // scan of its last once-per-instance reads
  // The schedule (LinuxProcessSourceOptions).
  uint64_t scan = 0;  // this scan's number (1 for the first)
  uint32_t refresh_every = 0;
  uint32_t exe_every = 0;
};

struct ReadPlan {
  // Step 1 (PlanExeLink).
  bool way_changed = false;     // last seen the other way (/proc <-> kernel): markers not comparable
  bool sig_moved = false;       // the exec signature moved
  bool exe_moved = false;       // the kernel's executable identity moved
  bool exe_link_first = false;  // read the exe link before deciding
  // Step 2 (PlanReads).
  bool exec = false;          // a new image in the same instance
  bool refresh = false;       // the periodic refresh is due
  bool full = false;          // the once-per-instance reads (fresh, exec or refresh)
  bool exe_link = false;      // the exe link is read (first or now)
  bool status = false;        // /proc/PID/status is read (from /proc only)
  bool owner_change = false;  // counted: the owner moved between two known owners
};

// Step 1: whether the exe link is read before the rest is decided.
ReadPlan PlanExeLink(const ReadInputs& in);
// Step 2. `link_differs`: the link read in step 1 differs from the one
// remembered (ignored unless exe_link_first).
void PlanReads(const ReadInputs& in, bool link_differs, ReadPlan* plan);

}  // namespace sentinel::procmond
