#include "procmond/platform/linux/read_plan.h"

namespace sentinel::procmond {

namespace {

// Every exe_every scans per instance, spread by pid (from /proc only: the
// kernel's sample names the executable every scan).
bool StaggeredExeRead(const ReadInputs& in) {
  if (in.now.from_kernel || in.exe_every == 0) return false;
  return in.exe_every == 1 || (static_cast<uint64_t>(in.pid) + in.scan) % in.exe_every == 0;
}

// Due once refresh_every scans passed since the last full read, on the
// scans where pid % N == scan % N (a scan pays for ~1/N of them).
bool RefreshDue(const ReadInputs& in) {
  return in.refresh_every > 0 && in.scan - in.last_full_scan >= in.refresh_every &&
         static_cast<uint64_t>(in.pid) % in.refresh_every == in.scan % in.refresh_every;
}

bool OwnerMoved(const ReadInputs& in) {
  return !in.now.owner_known || !in.last.owner_known || in.now.owner_uid != in.last.owner_uid ||
         in.now.owner_gid != in.last.owner_gid;
}

}  // namespace

ReadPlan PlanExeLink(const ReadInputs& in) {
  ReadPlan plan;
  const bool known = !in.fresh;
  plan.way_changed = known && in.last.from_kernel != in.now.from_kernel;
  const bool comparable = known && !plan.way_changed && !in.dead;  // a zombie's signature reads 0
  plan.sig_moved = comparable && in.last.exec_sig != in.now.exec_sig;
  // The kernel's sample names the executable: a deleted or swapped image
  // (prctl PR_SET_MM_EXE_FILE) is seen now, without a readlink per scan.
  plan.exe_moved = comparable && in.now.from_kernel && in.last.exe_key != in.now.exe_key;
  plan.exe_link_first =
      in.fresh || plan.way_changed || plan.sig_moved || plan.exe_moved || StaggeredExeRead(in);
  return plan;
}

void PlanReads(const ReadInputs& in, bool link_differs, ReadPlan* plan) {
  // Both signatures shown and different (to or from 0 is a change of
  // access: the link decides). A process that became a zombie has lost its
  // exe link: still the same image.
  const bool sig_says_exec = plan->sig_moved && in.last.exec_sig != 0 && in.now.exec_sig != 0;
  const bool link_says_exec = plan->exe_link_first && !in.dead && link_differs;
  plan->exec = !in.fresh && (in.now.comm != in.last.comm || sig_says_exec || link_says_exec);
  // Zombies and kernel threads have nothing left to refresh.
  plan->refresh = !in.fresh && !plan->exec && !in.dead && !in.kernel_thread && RefreshDue(in);
  plan->full = in.fresh || plan->exec || plan->refresh;
  plan->exe_link = plan->exe_link_first || plan->full;
  if (in.now.from_kernel) return;  // every id comes with the sample: no status file
  const bool owner_changed = !plan->full && OwnerMoved(in);
  plan->status = plan->full || owner_changed;
  plan->owner_change = owner_changed && in.now.owner_known && in.last.owner_known;
}

}  // namespace sentinel::procmond
