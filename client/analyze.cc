// `clrdiag analyze DUMP [-c CMD]...`: a session in the daemon, next to the dump.
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <string>

#include "absl/strings/ascii.h"
#include "client/client.h"

namespace clrdiag::cli {
namespace {

bool IsExit(const std::string& line) {
  std::string c(absl::StripAsciiWhitespace(line));
  return c == "exit" || c == "quit" || c == "q";
}

}  // namespace

int RunAnalyze(Client& client, const std::string& dump, const std::vector<std::string>& commands,
               bool json) {
  grpc::ClientContext ctx;
  auto stream = client.stub().Analyze(&ctx);
  clrdiag::v1::AnalyzeRequest open;
  open.mutable_open()->set_dump(dump);
  // With --json, stdout carries only the commands' JSON documents.
  std::fprintf(json ? stderr : stdout, "Loading core dump: %s ...\n", dump.c_str());
  std::fflush(json ? stderr : stdout);
  clrdiag::v1::AnalyzeResponse resp;
  if (!stream->Write(open) || !stream->Read(&resp) || !resp.has_opened()) {
    stream->WritesDone();
    grpc::Status st = stream->Finish();
    if (st.ok())
      st = grpc::Status(grpc::StatusCode::INTERNAL, "the session ended before it opened");
    return client.Fail(st);
  }
  bool failed = false;
  bool ended = false;
  uint64_t next_id = 1;
  // Runs one command and prints its output as it arrives. Returns false when the session is
  // over (exit, or the worker is gone).
  auto run = [&](const std::string& line) -> bool {
    clrdiag::v1::AnalyzeRequest req;
    req.mutable_command()->set_id(next_id++);
    req.mutable_command()->set_command_line(line);
    req.mutable_command()->set_json(json);
    if (!stream->Write(req)) return false;
    while (stream->Read(&resp)) {
      if (resp.has_output()) {
        std::fwrite(resp.output().text().data(), 1, resp.output().text().size(), stdout);
        continue;
      }
      if (resp.has_done()) {
        std::fflush(stdout);
        if (!resp.done().ok()) {
          failed = true;
          std::fprintf(stderr, "%s\n", resp.done().error().c_str());
        }
        return !resp.done().exit();
      }
    }
    return false;
  };
  for (const auto& c : commands) {
    if (!run(c)) {
      ended = true;
      break;
    }
  }
  if (!ended) {
    bool tty = ::isatty(STDIN_FILENO) == 1;
    if (tty && StdoutIsTty()) {
      std::printf(
          "Ready to process analysis commands. Type 'help' to list available commands or 'help "
          "[command]' to get detailed help on a command.\nType 'quit' or 'exit' to exit the "
          "session.\n");
    }
    std::string line;
    for (;;) {
      if (tty) {
        std::printf("> ");
        std::fflush(stdout);
      }
      if (!std::getline(std::cin, line)) break;
      if (absl::StripAsciiWhitespace(line).empty()) continue;
      if (!run(line) || IsExit(line)) break;
    }
  }
  stream->WritesDone();
  grpc::Status st = stream->Finish();
  if (!st.ok()) return client.Fail(st);
  return failed ? kExitFailed : kExitOk;
}

}  // namespace clrdiag::cli
