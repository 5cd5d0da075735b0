#include "sentinelcli/commands/config_cmd.h"

#include <gtest/gtest.h>

namespace sentinel::cli {
namespace {

TEST(ConfigShowTest, RedactsSecrets) {
  config::Config c;
  config::SinkConfig hook;
  hook.name = "soar";
  hook.type = "webhook";
  hook.url = "https://bot:hunter2@127.0.0.1:8443/hook?x=1";
  hook.headers["Authorization"] = "Bearer s3cret";
  config::SinkConfig mail;
  mail.name = "mail";
  mail.type = "email";
  mail.smtp_url = "smtp://u:pw@127.0.0.1:25";
  config::SinkConfig plain;
  plain.name = "plain";
  plain.type = "webhook";
  plain.url = "http://127.0.0.1:8080/a@b";
  c.alerting.sinks = {hook, mail, plain};
  config::Config r = RedactSecrets(c);
  std::string dump = config::ToJson(r).dump();
  EXPECT_EQ(dump.find("hunter2"), std::string::npos);
  EXPECT_EQ(dump.find("s3cret"), std::string::npos);
  EXPECT_EQ(dump.find("pw@"), std::string::npos);
  // Userinfo, path and query may each carry the token (Slack keeps it in the path): only
  // scheme://host:port is shown, as in every error message.
  EXPECT_EQ(r.alerting.sinks[0].url, "https://127.0.0.1:8443/…");
  EXPECT_EQ(r.alerting.sinks[1].smtp_url, "smtp://127.0.0.1:25/…");
  EXPECT_EQ(r.alerting.sinks[2].url, "http://127.0.0.1:8080/…");  // '@' in the path is not userinfo
  EXPECT_EQ(dump.find("?x=1"), std::string::npos);
  EXPECT_EQ(dump.find("/hook"), std::string::npos);
  EXPECT_EQ(r.alerting.sinks[0].headers.at("Authorization"), "<redacted>");
}

}  // namespace
}  // namespace sentinel::cli
