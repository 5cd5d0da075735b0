#include "sentinel/ipc/control_socket.h"

#include <grp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "control_socket_test_util.h"
#include "sentinel/base/files.h"
#include "sentinel/testing/temp_dir.h"
#include "sentinel/testing/wait.h"

namespace sentinel::ipc {
namespace {

std::string RawFrame(const std::string& payload) {
  auto f = EncodeFrame(payload);
  return f.ok() ? *f : "";
}

TEST(ControlServer, AnswersCommandsAndErrors) {
  TestServer ts;
  ASSERT_TRUE(ts.server);
  auto r = Call(ts.path(), "health", 2000);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)["ok"], true);
  EXPECT_EQ((*r)["id"], 1);
  EXPECT_EQ((*r)["result"]["status"], "ok");

  r = Call(ts.path(), "scan-now", 2000);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(ts.scans.load(), 1);

  r = Call(ts.path(), "stats", 2000);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)["ok"], false);
  EXPECT_EQ((*r)["error"], "no stats yet");

  r = Call(ts.path(), "format-disk", 2000);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)["ok"], false);
  EXPECT_NE((*r)["error"].get<std::string>().find("unknown command \"format-disk\""), std::string::npos)
      << *r;
}

TEST(ControlServer, SocketAndDirectoryModes) {
  TestServer ts;
  ASSERT_TRUE(ts.server);
  EXPECT_TRUE(ts.server->created_dir());
  struct stat st {};
  ASSERT_EQ(::stat(ts.tmp.File("run").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0750u);
  ASSERT_EQ(::lstat(ts.path().c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0660u);
  const std::string p = ts.path();
  ts.server->Stop();
  EXPECT_NE(::lstat(p.c_str(), &st), 0) << "socket file left behind after Stop";
}

TEST(ControlServer, BadJsonGetsAReasonAndTheConnectionStaysUsable) {
  TestServer ts;
  ASSERT_TRUE(ts.server);
  auto r = CallRaw(ts.path(), RawFrame("{\"cmd\": "), 2000);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)["ok"], false);
  EXPECT_NE((*r)["error"].get<std::string>().find("not valid JSON"), std::string::npos) << *r;
  EXPECT_EQ(ts.server->stats().bad_requests, 1u);
}

TEST(ControlServer, GarbageMagicWrongVersionAndOversizedAreRefusedWithAReason) {
  TestServer ts;
  ASSERT_TRUE(ts.server);
  std::string wrong_version = RawFrame(R"({"cmd":"health"})");
  wrong_version[4] = 9;
  std::string oversized = std::string("SNTL\x01", 5) + std::string("\x00\x10\x00\x01", 4);
  struct Case {
    std::string bytes;
    std::string reason;
  } cases[] = {{"GET /metrics HTTP/1.0\r\n\r\n", "bad magic"},
               {wrong_version, "unsupported protocol version 9"},
               {oversized, "frame of 1048577 bytes exceeds the limit of 65536 bytes"}};
  for (const auto& c : cases) {
    auto r = CallRaw(ts.path(), c.bytes, 2000);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ((*r)["ok"], false);
    EXPECT_NE((*r)["error"].get<std::string>().find(c.reason), std::string::npos) << *r;
  }
  EXPECT_EQ(ts.server->stats().bad_frames, 3u);
  // Still serving.
  auto r = Call(ts.path(), "health", 2000);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)["ok"], true);
}

TEST(ControlServer, TruncatedFrameIsCountedAndTheServerSurvives) {
  TestServer ts;
  ASSERT_TRUE(ts.server);
  std::string f = RawFrame(R"({"cmd":"health"})");
  auto r = CallRaw(ts.path(), f.substr(0, f.size() - 4), 2000, /*half_close=*/true);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
  // The server notices the EOF mid-frame and counts it before it closes the
  // connection; that close is what the client saw, so the count is there.
  EXPECT_EQ(ts.server->stats().bad_frames, 1u);
  EXPECT_TRUE(Call(ts.path(), "health", 2000).ok());
}

// A connected client that sends nothing (-1 on failure).
int ConnectSilently(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Whether the server closes `fd` (recv sees EOF; a blocking read bounded at 10 s). Closes fd.
bool ClosedByServer(int fd) {
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  char c;
  const bool closed = ::recv(fd, &c, 1, 0) == 0;
  ::close(fd);
  return closed;
}

TEST(ControlServer, SilentClientTimesOutWithoutBlockingOthers) {
  TestServer ts(16, 300);
  ASSERT_TRUE(ts.server);
  int fd = ConnectSilently(ts.path());
  ASSERT_GE(fd, 0);
  // Another client is served while the silent one holds its connection.
  auto r = Call(ts.path(), "health", 2000);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(ClosedByServer(fd)) << "server did not close a silent client";
  EXPECT_GE(ts.server->stats().timeouts, 1u);
  EXPECT_TRUE(Call(ts.path(), "health", 2000).ok());
}

// Reads notices from `sub` until `want` have come (the poll bounds a hang, it asserts no time).
std::vector<nlohmann::json> ReadNotices(Subscription& sub, size_t want) {
  std::vector<nlohmann::json> got;
  while (got.size() < want) {
    pollfd p{sub.fd(), POLLIN, 0};
    if (::poll(&p, 1, 10'000) <= 0) break;
    auto more = sub.Read();
    if (!more.ok()) break;
    for (auto& j : *more) got.push_back(std::move(j));
  }
  return got;
}

TEST(ControlServer, SubscriberGetsEveryPublishedNoticeAndOutlivesTheRequestDeadline) {
  TestServer ts(16, 100);  // a short request deadline the subscriber must not be held to
  ASSERT_TRUE(ts.server);
  auto sub = Subscription::Open(ts.path(), "subscribe_events", 2000);
  ASSERT_TRUE(sub.ok()) << sub.status().ToString();
  ASSERT_TRUE(
      testing::WaitFor([&] { return ts.server->stats().subscribers == 1; }, std::chrono::seconds(10)));
  ts.server->Publish({{"event", "events_written"}, {"last_id", 7}});
  auto got = ReadNotices(**sub, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0]["event"], "events_written");
  EXPECT_EQ(got[0]["last_id"], 7);

  // A silent plain client is closed at the deadline; the subscriber, connected longer, is not.
  int fd = ConnectSilently(ts.path());
  ASSERT_GE(fd, 0);
  EXPECT_TRUE(ClosedByServer(fd)) << "server did not close a silent client";
  EXPECT_GE(ts.server->stats().timeouts, 1u);
  for (int i = 1; i <= 3; ++i) ts.server->Publish({{"event", "events_written"}, {"last_id", 7 + i}});
  got = ReadNotices(**sub, 3);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[2]["last_id"], 10);
  EXPECT_EQ(ts.server->stats().subscribers, 1u);
  EXPECT_EQ(ts.server->stats().published, 4u);
}

TEST(ControlServer, PublishFromAnotherThreadWakesTheServer) {
  TestServer ts;
  ASSERT_TRUE(ts.server);
  auto a = Subscription::Open(ts.path(), "subscribe_events", 2000);
  auto b = Subscription::Open(ts.path(), "subscribe_events", 2000);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(
      testing::WaitFor([&] { return ts.server->stats().subscribers == 2; }, std::chrono::seconds(10)));
  std::thread publisher([&] {
    for (int i = 0; i < 50; ++i) ts.server->Publish({{"n", i}});
  });
  publisher.join();
  for (auto* sub : {a->get(), b->get()}) {
    auto got = ReadNotices(*sub, 50);
    ASSERT_EQ(got.size(), 50u);
    for (int i = 0; i < 50; ++i) EXPECT_EQ(got[static_cast<size_t>(i)]["n"], i);
  }
  // A plain request on another connection is still answered as before.
  EXPECT_TRUE(Call(ts.path(), "health", 2000).ok());
}

TEST(ControlServer, SubscribeIsAnUnknownCommandWhereNotOffered) {
  testing::TempDir tmp;
  ServerOptions o;
  o.socket_dir = tmp.File("run");
  o.socket_name = kAgentSocket;
  o.component = "test";
  auto s = ControlServer::Listen(o, {});
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE((*s)->Start().ok());
  auto sub = Subscription::Open((*s)->path(), "subscribe_events", 2000);
  ASSERT_FALSE(sub.ok());
  EXPECT_EQ(sub.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(sub.status().message().find("unknown command"), std::string::npos) << sub.status().message();
}

TEST(ControlServer, ManyClientsAreServedOrToldBusy) {
  TestServer ts(4, 2000);
  ASSERT_TRUE(ts.server);
  std::atomic<int> ok{0}, busy{0}, other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 25; ++i) {
        auto r = Call(ts.path(), "scan-now", 5000);
        if (r.ok() && (*r)["ok"] == true) {
          ok++;
        } else if (r.ok() && (*r)["error"].get<std::string>().find("server busy") != std::string::npos) {
          busy++;
        } else {
          other++;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok + busy, 400) << "other outcomes: " << other.load();
  EXPECT_EQ(ts.scans.load(), ok.load());
  EXPECT_GT(ok.load(), 0);
  EXPECT_EQ(ts.server->stats().busy, static_cast<uint64_t>(busy.load()));
}

TEST(ControlServer, StaleSocketReplacedLiveOneRefused) {
  testing::TempDir tmp;
  ServerOptions o;
  o.socket_dir = tmp.path();
  o.socket_name = kAgentSocket;
  o.component = "test";
  // A stale socket: bound, then its owner went away without unlinking.
  {
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, SocketPath(tmp.path(), kAgentSocket).c_str(), sizeof(addr.sun_path) - 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    ::close(fd);
  }
  auto first = ControlServer::Listen(o, {});
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_FALSE((*first)->created_dir());
  auto second = ControlServer::Listen(o, {});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kAlreadyExists);
  EXPECT_NE(second.status().message().find("already listening on " + (*first)->path()), std::string::npos)
      << second.status().message();
  // The refused one did not remove the live socket.
  struct stat st {};
  EXPECT_EQ(::lstat((*first)->path().c_str(), &st), 0);
}

TEST(ControlServer, NonSocketPathAndTooLongPathRefused) {
  testing::TempDir tmp;
  testing::WriteFile(tmp.File("agent.sock"), "not a socket");
  ServerOptions o;
  o.socket_dir = tmp.path();
  o.socket_name = kAgentSocket;
  auto s = ControlServer::Listen(o, {});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.status().message().find("is not a socket"), std::string::npos);
  o.socket_dir = tmp.path() + "/" + std::string(120, 'd');
  s = ControlServer::Listen(o, {});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
}

// Issue 14: the socket directory may belong to the service user; a link
// planted at the socket or in place of the directory is refused, and the
// file it points to keeps its mode and owner.
TEST(ControlServer, LinksAtTheSocketOrTheDirectoryAreRefused) {
  testing::TempDir tmp;
  testing::WriteFile(tmp.File("target"), "precious");
  ASSERT_EQ(::chmod(tmp.File("target").c_str(), 0600), 0);
  ASSERT_EQ(::mkdir(tmp.File("ipc").c_str(), 0750), 0);
  ServerOptions o;
  o.socket_dir = tmp.File("ipc");
  o.socket_name = kAgentSocket;
  const std::string sock = tmp.File("ipc/") + kAgentSocket;
  ASSERT_EQ(::symlink(tmp.File("target").c_str(), sock.c_str()), 0);
  auto s = ControlServer::Listen(o, {});
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(IsRefusedPath(s.status())) << s.status().message();
  EXPECT_NE(s.status().message().find("refusing " + sock + ": it is a symbolic link"), std::string::npos)
      << s.status().message();

  ASSERT_EQ(::symlink(tmp.File("ipc").c_str(), tmp.File("ipc-link").c_str()), 0);
  o.socket_dir = tmp.File("ipc-link");
  s = ControlServer::Listen(o, {});
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(IsRefusedPath(s.status())) << s.status().message();
  EXPECT_NE(
      s.status().message().find("refusing " + tmp.File("ipc-link") + ": ipc.socket_dir is a symbolic link"),
      std::string::npos)
      << s.status().message();

  struct stat st {};
  ASSERT_EQ(::lstat(tmp.File("target").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(testing::ReadFile(tmp.File("target")), "precious");
  struct stat link {};
  ASSERT_EQ(::lstat(sock.c_str(), &link), 0);
  EXPECT_TRUE(S_ISLNK(link.st_mode));  // left where it was: not ours to remove
}

TEST(ControlClient, NothingListeningIsUnavailable) {
  testing::TempDir tmp;
  auto r = Call(tmp.File("procmond.sock"), "health", 500);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find(tmp.File("procmond.sock")), std::string::npos);
}

}  // namespace
}  // namespace sentinel::ipc
