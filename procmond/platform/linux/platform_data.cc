#include "procmond/platform/linux/platform_data.h"

#include "procmond/hashing/exe_hasher.h"
#include "procmond/platform/linux/proc_parsers.h"

namespace sentinel::procmond {

namespace lp = linux_proc;
using nlohmann::json;

namespace {

// Keys of platform_data.errors that belong to every-scan reads.
constexpr const char* kScanErrorKeys[] = {"status", "cmdline", "exe"};

void SetOrErase(json* pd, const char* key, bool present, json value) {
  if (present) {
    (*pd)[key] = std::move(value);
  } else {
    pd->erase(key);
  }
}

}  // namespace

void ApplyScanFields(const ScanFields& f, json* pd) {
  SetOrErase(pd, "uid", f.have_status, {{"real", f.ruid}, {"effective", f.euid}});
  SetOrErase(pd, "gid", f.have_status, {{"real", f.rgid}, {"effective", f.egid}});
  (*pd)["threads"] = f.threads;
  auto tty = lp::TtyName(f.tty_nr);
  SetOrErase(pd, "tty", tty.has_value(), tty.value_or(""));
  json errs = pd->contains("errors") ? (*pd)["errors"] : json::object();
  for (const char* k : kScanErrorKeys) errs.erase(k);
  for (const auto& [k, v] : f.errors) errs[k] = v;
  const bool any_errors = !errs.empty();
  SetOrErase(pd, "errors", any_errors, std::move(errs));
}

void OnceFieldsBuilder::Fail(const std::string& field, const Status& st) {
  if (st.code() == StatusCode::kNotFound) return;  // exited meanwhile
  errs_[field] = st.message();
  errors_->Add(st.message());
}

void OnceFieldsBuilder::ExeLink(std::string_view target) {
  auto exe = lp::ClassifyExe(target);
  if (exe.deleted) pd_["exe_deleted"] = true;
  if (exe.memfd) pd_["exe_memfd"] = true;
}

void OnceFieldsBuilder::Cgroup(const Status& read, std::string_view content) {
  if (!read.ok()) return Fail("cgroup", read);
  if (auto cg = lp::ParseCgroup(content); cg.ok()) {
    pd_["cgroup"] = *cg;
  } else {
    Fail("cgroup", cg.status());
  }
}

void OnceFieldsBuilder::PtraceDenied(const Status& exe_status) {
  errs_["access"] = "cwd, ns, fds, environ not read: " + exe_status.message();
  pd_["hash_skipped"] = kHashSkipPermissionDenied;
}

void OnceFieldsBuilder::Cwd(const Status& read, std::string_view link) {
  if (read.ok()) {
    pd_["cwd"] = link;
  } else {
    Fail("cwd", read);
  }
}

void OnceFieldsBuilder::Namespace(const char* type, const Status& read, std::string_view link) {
  const std::string field = std::string("ns.") + type;
  if (!read.ok()) return Fail(field, read);
  if (auto ino = lp::ParseNsLink(link, type); ino.ok()) {
    ns_[type] = *ino;
  } else {
    Fail(field, ino.status());
  }
}

void OnceFieldsBuilder::Fd(const char* fd, const Status& read, std::string_view link) {
  if (read.code() == StatusCode::kNotFound) {
    fds_[fd] = {{"type", "none"}};
    return;
  }
  if (!read.ok()) return Fail(std::string("fd.") + fd, read);
  lp::FdTarget t = lp::ClassifyFdTarget(link);
  json j = {{"type", t.type}};
  if (!t.path.empty()) j["path"] = t.path;
  if (t.inode) j["inode"] = *t.inode;
  fds_[fd] = std::move(j);
}

void OnceFieldsBuilder::LoaderEnv(const Status& read, std::string_view environ) {
  // Only names are looked at: LoaderEnvNames never copies a value out.
  if (read.ok()) {
    pd_["loader_env"] = lp::LoaderEnvNames(environ);
  } else {
    Fail("environ", read);
  }
}

void OnceFieldsBuilder::ExeLinks(const Status& read, uint64_t nlink, uint32_t owner_uid) {
  if (!read.ok()) return Fail("exe_links", read);
  pd_["exe_nlink"] = nlink;
  pd_["exe_owner_uid"] = owner_uid;
}

void OnceFieldsBuilder::HashFailed(const std::string& skipped, const std::string& detail) {
  if (skipped == kHashSkipGone) return;
  pd_["hash_skipped"] = skipped;
  if (skipped == kHashSkipPermissionDenied || skipped == kHashSkipIoError) {
    std::string reason = "exe hash: " + detail;
    errs_["exe_hash"] = reason;
    errors_->Add(reason);
  }
}

void OnceFieldsBuilder::HostCheck(const struct HostCheck& c) {
  if (c.mismatch) pd_["exe_host_mismatch"] = *c.mismatch;
  if (c.mismatch.value_or(false)) pd_["exe_host_mismatch_reason"] = c.reason;
  if (!c.skipped.empty()) pd_["exe_host_skipped"] = c.skipped;
}

void OnceFieldsBuilder::MemfdSeals(const Result<uint32_t>& seals) {
  if (seals.ok()) {
    pd_["exe_memfd_seals"] = *seals;
  } else {
    Fail("exe_memfd_seals", seals.status());
  }
}

json HiddenProcessData(const std::string& reason) {
  return {{"proc_hidden", true}, {"proc_hidden_reason", reason}, {"errors", {{"proc", reason}}}};
}

json OnceFieldsBuilder::Take() {
  if (!ns_.empty()) pd_["ns"] = std::move(ns_);
  if (!fds_.empty()) pd_["fds"] = std::move(fds_);
  if (!errs_.empty()) pd_["errors"] = std::move(errs_);
  return std::move(pd_);
}

}  // namespace sentinel::procmond
