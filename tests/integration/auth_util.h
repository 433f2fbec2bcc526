// Helpers of the security tests: throwaway users, the audit log, raw gRPC calls.
#pragma once

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "clrdiag/v1/clrdiag.grpc.pb.h"
#include "nlohmann/json.hpp"
#include "tests/harness/harness.h"

namespace clrdiag::testing {

// A user created for one test (no home, no login shell, its own group), deleted afterwards.
class TestUser {
 public:
  explicit TestUser(std::string name, const std::string& extra_group = "")
      : name_(std::move(name)) {
    std::vector<std::string> argv = {"/usr/sbin/useradd", "-M", "-U", "-s", "/usr/sbin/nologin"};
    if (!extra_group.empty()) {
      argv.push_back("-G");
      argv.push_back(extra_group);
    }
    argv.push_back(name_);
    RunResult r = RunCommand(argv);
    if (r.exit_code != 0) {
      ADD_FAILURE() << "useradd " << name_ << ": " << r.err;
      return;
    }
    created_ = true;
    struct passwd* pw = ::getpwnam(name_.c_str());
    if (pw) {
      uid_ = pw->pw_uid;
      gid_ = pw->pw_gid;
    }
  }
  ~TestUser() {
    if (created_) RunCommand({"/usr/sbin/userdel", name_});
  }
  bool ok() const { return created_ && uid_ != 0; }
  uid_t uid() const { return uid_; }
  const std::string& name() const { return name_; }
  // Runs the rest of a command line as this user (setpriv execs: the pid stays the same).
  std::vector<std::string> Prefix() const {
    return {"/usr/bin/setpriv", "--reuid", std::to_string(uid_), "--regid", std::to_string(gid_),
            "--init-groups",    "--"};
  }
  // SleepApp running as this user (its diagnostics socket in /tmp).
  std::unique_ptr<Process> StartSleepApp() const {
    std::vector<std::string> argv = Prefix();
    argv.push_back(FixturePath("SleepApp"));
    SpawnOptions so;
    so.env["TMPDIR"] = "/tmp";
    so.env["HOME"] = "/tmp";
    so.cwd = "/";
    auto p = Process::Spawn(argv, so);
    if (!p || !p->WaitForLine("READY", std::chrono::seconds(60))) return nullptr;
    return p;
  }

 private:
  std::string name_;
  bool created_ = false;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
};

inline std::vector<nlohmann::json> AuditLines(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded()) out.push_back(j);
  }
  return out;
}

struct RawCallResult {
  int code = -1;
  std::string message;
};

inline std::unique_ptr<v1::Diagnostics::Stub> RawStub(const std::string& target) {
  grpc::ChannelArguments args;
  args.SetMaxSendMessageSize(4 << 20);
  return v1::Diagnostics::NewStub(
      grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args));
}

inline RawCallResult RawDeleteDump(const std::string& target, const std::string& id) {
  auto stub = RawStub(target);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  v1::DeleteDumpRequest req;
  req.set_id(id);
  v1::DeleteDumpResponse resp;
  grpc::Status st = stub->DeleteDump(&ctx, req, &resp);
  return {static_cast<int>(st.error_code()), st.error_message()};
}

inline RawCallResult RawAnalyzeOpen(const std::string& target, const std::string& dump) {
  auto stub = RawStub(target);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  auto stream = stub->Analyze(&ctx);
  v1::AnalyzeRequest req;
  req.mutable_open()->set_dump(dump);
  stream->Write(req);
  stream->WritesDone();
  v1::AnalyzeResponse resp;
  while (stream->Read(&resp)) {
  }
  grpc::Status st = stream->Finish();
  return {static_cast<int>(st.error_code()), st.error_message()};
}

}  // namespace clrdiag::testing
