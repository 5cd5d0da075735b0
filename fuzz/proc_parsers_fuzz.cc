// libFuzzer target for procmond's /proc parsers
// (procmond/platform/linux/proc_parsers.h). Any process controls much of what
// these read: its comm and argv (stat, status, cmdline), its environment, its
// cgroup name, the paths of its executable and open files. Every parser gets
// every input, so a real sample of one file also exercises the others.
//   cmake --preset fuzz && cmake --build build/fuzz --target proc_parsers_fuzz
//   build/fuzz/fuzz/proc_parsers_fuzz -max_total_time=60 <copy of fuzz/corpus/proc_parsers>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "procmond/platform/linux/proc_parsers.h"

namespace lp = sentinel::procmond::linux_proc;

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

bool IsSubstring(std::string_view hay, std::string_view needle) {
  return hay.find(needle) != std::string_view::npos;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);

  if (auto st = lp::ParseStat(in); st.ok()) {
    Check(IsSubstring(in, st->comm));
    Check(!lp::StateName(st->state).empty());
    if (auto tty = lp::TtyName(st->tty_nr)) Check(!tty->empty());
  } else {
    Check(!st.status().message().empty());
  }

  if (auto st = lp::ParseStatus(in); st.ok()) {
    Check(st->name.has_value() || st->ruid.has_value());
  }

  // ParseCmdlineInto into a recycled vector must give what ParseCmdline gives.
  std::vector<std::string> args = lp::ParseCmdline(in);
  size_t bytes = 0;
  for (const std::string& a : args) bytes += a.size() + 1;
  Check(in.empty() ? args.empty() : bytes == in.size() + (in.back() == '\0' ? 0 : 1));
  std::vector<std::string> recycled = {"a long argument that leaves capacity behind", "", "x"};
  lp::ParseCmdlineInto(in, &recycled);
  Check(recycled == args);

  if (auto bt = lp::ParseBootTime(in); !bt.ok()) Check(!bt.status().message().empty());

  lp::ExeInfo exe = lp::ClassifyExe(in);
  Check(exe.path == in);

  if (auto cg = lp::ParseCgroup(in); cg.ok()) {
    Check(!cg->empty() && (*cg)[0] == '/' && IsSubstring(in, *cg));
  }

  for (std::string_view type : {"pid", "mnt", "net", "user"}) {
    (void)lp::ParseNsLink(in, type);
  }

  lp::FdTarget fd = lp::ClassifyFdTarget(in);
  Check(!fd.type.empty());
  Check(fd.inode.has_value() == (fd.type == "pipe" || fd.type == "socket"));

  std::vector<std::string> loader = lp::LoaderEnvNames(in);
  Check(loader.size() <= 3);
  for (const std::string& name : loader) {
    Check(name == "LD_PRELOAD" || name == "LD_LIBRARY_PATH" || name == "LD_AUDIT");
    Check(IsSubstring(in, name + "="));
  }
  return 0;
}
