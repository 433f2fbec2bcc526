// `clrdiag analyze DUMP [-c CMD]...`: a session in the daemon, next to the dump.
//
// The commands given with -c run first; then, unless one of them was `exit`, commands come
// from stdin: a line editor with history and completion on a terminal, plain lines otherwise.
// Ctrl-C while a command runs cancels that command (the session goes on); Ctrl-C or Ctrl-D at
// the prompt ends the session. Progress of long commands shows on stderr when it is a terminal.
// `logopen FILE` / `logclose` copy the session's output to a file on this machine.
#include <editline/readline.h>
#include <pthread.h>
#include <signal.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <iostream>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/client.h"
#include "client/heapdiff.h"
#include "core/base/phase_log.h"
#include "nlohmann/json.hpp"

namespace clrdiag::cli {
namespace {

bool IsExit(const std::string& line) {
  std::string c = absl::AsciiStrToLower(absl::StripAsciiWhitespace(line));
  return c == "exit" || c == "quit" || c == "q";
}

std::string HistoryPath() {
  const char* home = std::getenv("HOME");
  return home && *home ? std::string(home) + "/.clrdiag_history" : "";
}

// 1234567 → "1,234,567".
std::string Grouped(uint64_t v) {
  std::string d = std::to_string(v), out;
  for (size_t i = 0; i < d.size(); ++i) {
    if (i > 0 && (d.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(d[i]);
  }
  return out;
}

// Command names and their options, for tab completion (filled from `help` in JSON).
struct Completions {
  std::vector<std::string> commands;
  std::map<std::string, std::vector<std::string>> options;  // by command name, lower case
};
Completions* g_completions = nullptr;

char* CompletionGenerator(const char* text, int state) {
  static std::vector<std::string> matches;
  static size_t next;
  if (state == 0) {
    matches.clear();
    next = 0;
    std::string line(rl_line_buffer, rl_point);
    std::string prefix(text);
    std::vector<std::string> words = absl::StrSplit(line, ' ', absl::SkipEmpty());
    const bool first_word =
        words.empty() || (words.size() == 1 && !line.empty() && line.back() != ' ');
    if (first_word) {
      for (const auto& c : g_completions->commands) {
        if (absl::StartsWithIgnoreCase(c, prefix)) matches.push_back(c);
      }
    } else {
      auto it = g_completions->options.find(absl::AsciiStrToLower(words[0]));
      if (it != g_completions->options.end()) {
        for (const auto& o : it->second) {
          if (absl::StartsWith(o, prefix)) matches.push_back(o);
        }
      }
    }
  }
  if (next < matches.size()) return strdup(matches[next++].c_str());
  return nullptr;
}

char** Complete(const char* text, int start, int end) {
  rl_attempted_completion_over = 1;  // no file-name completion
  if (!g_completions) return nullptr;
  return rl_completion_matches(text, CompletionGenerator);
}

}  // namespace

int RunAnalyze(Client& client, const std::string& dump, const std::vector<std::string>& commands,
               bool json) {
  // SIGINT is handled by a thread of its own (sigwait), in every phase of the session.
  sigset_t sigint;
  sigemptyset(&sigint);
  sigaddset(&sigint, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigint, nullptr);

  clrdiag::PhaseMark("client", "analyze");
  grpc::ClientContext ctx;
  auto stream = client.stub().Analyze(&ctx);
  std::mutex write_mu;  // one writer at a time: commands (main thread), cancels (signal thread)
  auto write = [&](const clrdiag::v1::AnalyzeRequest& r) {
    std::lock_guard<std::mutex> lock(write_mu);
    return stream->Write(r);
  };
  clrdiag::v1::AnalyzeRequest open;
  open.mutable_open()->set_dump(dump);
  // With --json, stdout carries only the commands' JSON documents.
  std::fprintf(json ? stderr : stdout, "Loading core dump: %s ...\n", dump.c_str());
  std::fflush(json ? stderr : stdout);
  clrdiag::v1::AnalyzeResponse resp;
  if (!write(open) || !stream->Read(&resp) || !resp.has_opened()) {
    stream->WritesDone();
    grpc::Status st = stream->Finish();
    if (st.ok())
      st = grpc::Status(grpc::StatusCode::INTERNAL, "the session ended before it opened");
    return client.Fail(st);
  }
  clrdiag::PhaseMark("client", "opened");

  const bool stdin_tty = ::isatty(STDIN_FILENO) == 1;
  const bool stderr_tty = ::isatty(STDERR_FILENO) == 1;
  struct termios saved_termios;
  const bool have_termios = stdin_tty && tcgetattr(STDIN_FILENO, &saved_termios) == 0;

  // The command now running (0: none, we are at the prompt or between -c commands).
  std::atomic<uint64_t> running{0};
  std::atomic<bool> at_prompt{false};
  // Set by Ctrl-C while a command runs: `heapdiff` also abandons its session on the base dump.
  std::atomic<bool> cancel_requested{false};
  std::thread signals([&] {
    for (;;) {
      int sig = 0;
      if (sigwait(&sigint, &sig) != 0) continue;
      uint64_t id = running.load();
      if (id != 0) {
        cancel_requested = true;
        clrdiag::v1::AnalyzeRequest c;
        c.mutable_cancel()->set_id(id);
        write(c);
        if (stderr_tty) std::fputs("\r\033[K", stderr);
        std::fputs("^C (cancelling the command)\n", stderr);
        continue;
      }
      // At the prompt (or before the session's first command): end the session.
      if (have_termios) tcsetattr(STDIN_FILENO, TCSANOW, &saved_termios);
      if (at_prompt.load()) std::fputs("\n", stdout);
      std::string history = HistoryPath();
      if (stdin_tty && !history.empty()) write_history(history.c_str());
      std::fflush(stdout);  // not stdin: the main thread may be blocked reading it
      std::fflush(stderr);
      std::_Exit(kExitOk);
    }
  });
  signals.detach();

  // Responses are read on their own thread, so that the end of the session (closed by an
  // administrator, idle timeout) is noticed while we wait at the prompt or on stdin.
  std::mutex queue_mu;
  std::condition_variable queue_cv;
  std::deque<clrdiag::v1::AnalyzeResponse> queue;
  bool stream_ended = false;
  std::thread reader([&] {
    clrdiag::v1::AnalyzeResponse r;
    while (stream->Read(&r)) {
      if (running.load() == 0 && r.has_done() && r.done().exit()) {
        // The daemon ended the session between commands.
        if (have_termios) tcsetattr(STDIN_FILENO, TCSANOW, &saved_termios);
        std::fflush(stdout);
        std::fprintf(stderr, "%s%s\n", at_prompt.load() ? "\n" : "", r.done().error().c_str());
        std::string history = HistoryPath();
        if (stdin_tty && !history.empty()) write_history(history.c_str());
        // Not fflush(nullptr): the main thread may hold stdin's lock, blocked in a read.
        std::fflush(stdout);
        std::fflush(stderr);
        std::_Exit(kExitFailed);
      }
      std::lock_guard<std::mutex> lock(queue_mu);
      queue.push_back(std::move(r));
      queue_cv.notify_all();
    }
    std::lock_guard<std::mutex> lock(queue_mu);
    stream_ended = true;
    queue_cv.notify_all();
  });
  // The next response, false once the stream ended.
  auto next = [&](clrdiag::v1::AnalyzeResponse* r) {
    std::unique_lock<std::mutex> lock(queue_mu);
    queue_cv.wait(lock, [&] { return !queue.empty() || stream_ended; });
    if (queue.empty()) return false;
    *r = std::move(queue.front());
    queue.pop_front();
    return true;
  };

  FILE* log = nullptr;  // logopen
  std::string log_path;
  // traverseheap FILE: the command's output is the file's content, written here (see the
  // traverseheap handling in `run` below).
  FILE* redirect = nullptr;
  uint64_t redirect_bytes = 0;
  bool redirect_failed = false;
  auto out = [&](const std::string& text) {
    if (redirect) {
      if (std::fwrite(text.data(), 1, text.size(), redirect) != text.size()) redirect_failed = true;
      redirect_bytes += text.size();
      return;
    }
    std::fwrite(text.data(), 1, text.size(), stdout);
    if (log) std::fwrite(text.data(), 1, text.size(), log);
  };

  bool failed = false;
  // CLRDIAG_TIMING=1: each command's time in the worker on stderr (benchmarks).
  const bool timing = std::getenv("CLRDIAG_TIMING") != nullptr;
  bool progress_shown = false;
  auto clear_progress = [&] {
    if (progress_shown) {
      std::fputs("\r\033[K", stderr);
      progress_shown = false;
    }
  };
  uint64_t next_id = 1;
  // `heapdiff -base A`: the diff from dump A to this session's dump, computed here from both
  // dumps' `dumpheap -stat` (JSON): this session's, and A's from a session of its own opened
  // for it (at the same time; the result is kept for the next heapdiff against A).
  std::map<std::string, HeapTypes> base_stats;
  auto heapdiff = [&](const std::string& line, const std::vector<std::string>& words) -> bool {
    auto fail = [&](const std::string& message) {
      failed = true;
      if (json) {
        out(nlohmann::ordered_json{{"command", line}, {"error", message}}.dump(
                -1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) +
            "\n");
      } else {
        std::fprintf(stderr, "%s\n", message.c_str());
        if (log) std::fprintf(log, "%s\n", message.c_str());
      }
      return true;
    };
    const char* kUsage =
        "Usage: heapdiff -base <dump>\n"
        "  <dump>: the earlier dump of the process (catalog id or daemon-host path); shows, per\n"
        "  type, how the heap grew from it to this session's dump";
    std::string base;
    for (size_t i = 1; i < words.size(); ++i) {
      if (absl::AsciiStrToLower(words[i]) == "-base" && i + 1 < words.size() && base.empty()) {
        base = words[++i];
      } else {
        return fail(absl::StrCat("heapdiff: unexpected argument '", words[i], "'\n", kUsage));
      }
    }
    if (base.empty()) return fail(absl::StrCat("heapdiff: -base <dump> is required\n", kUsage));
    cancel_requested = false;
    HeapTypes a, b;
    grpc::Status a_status;
    std::string a_error;
    bool a_ok = true;
    std::thread fetch;
    auto cached = base_stats.find(base);
    if (cached != base_stats.end()) {
      a = cached->second;
    } else {
      fetch = std::thread(
          [&] { a_ok = FetchHeapStat(client, base, &a, &a_status, &a_error, &cancel_requested); });
    }
    // This session's dump: `dumpheap -stat` here, its JSON collected instead of shown.
    clrdiag::v1::AnalyzeRequest req;
    const uint64_t id = next_id++;
    req.mutable_command()->set_id(id);
    req.mutable_command()->set_command_line("dumpheap -stat");
    req.mutable_command()->set_json(true);
    std::string text, b_error;
    bool b_done = false, b_ok = false, session_over = false;
    running = id;
    if (write(req)) {
      while (next(&resp)) {
        if (resp.has_progress()) {
          if (!stderr_tty) continue;
          const auto& p = resp.progress();
          std::string t = absl::StrCat("heapdiff: ", p.stage(), ": ");
          if (p.total() > 0) {
            absl::StrAppend(&t, std::min<uint64_t>(100, p.done() * 100 / p.total()), "%, ");
          }
          absl::StrAppend(&t, Grouped(p.items()), " objects (Ctrl-C cancels)");
          std::fprintf(stderr, "\r\033[K%s", t.c_str());
          progress_shown = true;
          continue;
        }
        if (resp.has_output()) text += resp.output().text();
        if (resp.has_done()) {
          b_done = true;
          b_ok = resp.done().ok();
          if (!b_ok) b_error = resp.done().error();
          session_over = resp.done().exit();
          break;
        }
      }
    }
    running = 0;
    if (!b_done) session_over = true;
    if (!b_ok && b_done) cancel_requested = true;  // no use waiting for A
    if (fetch.joinable()) fetch.join();
    clear_progress();
    if (!b_done) return false;
    if (b_ok && !ParseHeapStat(text, &b, &b_error)) b_ok = false;
    if (!b_ok) {
      fail(absl::StrCat("heapdiff: this session's dump: ", b_error));
      return !session_over;
    }
    if (!a_ok) {
      std::string why = !a_status.ok() ? a_status.error_message() : a_error;
      if (cancel_requested.load()) why = "cancelled";
      fail(absl::StrCat("heapdiff: ", base, ": ", why));
      return true;
    }
    base_stats[base] = a;
    if (json) {
      auto doc = nlohmann::ordered_json{{"command", line}};
      doc["result"] = nlohmann::ordered_json::parse(HeapDiffJson(a, b, base, dump));
      out(doc.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n");
    } else {
      out(FormatHeapDiff(a, b, base, dump));
    }
    std::fflush(stdout);
    return true;
  };
  // Runs one command and prints its output as it arrives. Returns false when the session is
  // over (exit, or the worker is gone).
  auto run = [&](const std::string& line) -> bool {
    // Client-side commands.
    std::vector<std::string> words = absl::StrSplit(line, ' ', absl::SkipEmpty());
    std::string verb = words.empty() ? "" : absl::AsciiStrToLower(words[0]);
    if (verb == "logopen") {
      if (log) std::fclose(log);
      log = nullptr;
      log_path = words.size() > 1 ? words[1] : "clrdiag-session.log";
      log = std::fopen(log_path.c_str(), "a");
      if (!log) {
        failed = true;
        std::fprintf(stderr, "logopen: cannot open %s for writing: %s\n", log_path.c_str(),
                     std::strerror(errno));
        return true;
      }
      if (!json) out(absl::StrCat("Console is logging to ", log_path, "\n"));
      return true;
    }
    if (verb == "logclose") {
      if (log) {
        if (!json) out(absl::StrCat("Console logging to ", log_path, " is closed\n"));
        std::fclose(log);
        log = nullptr;
      } else if (!json) {
        out("Console logging was not enabled\n");
      }
      return true;
    }
    if (verb == "heapdiff") return heapdiff(line, words);
    // traverseheap writes a file where the user asked: on this machine, relative to this
    // client's directory, with the user's rights (never as the daemon). The worker produces
    // the content (`traverseheap [-xml] -`); it arrives as the command's output and goes to
    // the file, opened first so that an unwritable path fails before the heap walk.
    std::string command_line = line;
    std::string file_path;
    bool file_xml = false;
    if (verb == "traverseheap") {
      // Only a well-formed command is redirected: anything else goes to the worker as typed
      // for its usage error, and no existing file is truncated by a typo.
      size_t file_word = 0;
      bool well_formed = true;
      for (size_t i = 1; i < words.size(); ++i) {
        if (absl::EqualsIgnoreCase(words[i], "-xml")) {
          file_xml = true;
        } else if (absl::EqualsIgnoreCase(words[i], "-verify")) {
        } else if (words[i][0] == '-' || file_word != 0) {
          well_formed = false;
        } else {
          file_word = i;
        }
      }
      if (well_formed && file_word != 0) {
        file_path = words[file_word];
        redirect = std::fopen(file_path.c_str(), "w");
        if (!redirect) {
          failed = true;
          const std::string error = absl::StrCat("traverseheap: cannot open ", file_path,
                                                 " for writing: ", std::strerror(errno));
          std::fprintf(stderr, "%s\n", error.c_str());
          if (json) out(nlohmann::json{{"command", line}, {"error", error}}.dump() + "\n");
          return true;
        }
        redirect_bytes = 0;
        redirect_failed = false;
        words[file_word] = std::string(1, '-');
        command_line = absl::StrJoin(words, " ");
      }
    }
    auto end_redirect = [&](bool ok) {
      if (!redirect) return ok;
      if (std::fclose(redirect) != 0) redirect_failed = true;
      redirect = nullptr;
      if (ok && redirect_failed) {
        const std::string error =
            absl::StrCat("traverseheap: writing ", file_path, " failed: ", std::strerror(errno));
        std::fprintf(stderr, "%s\n", error.c_str());
        if (json) out(nlohmann::json{{"command", line}, {"error", error}}.dump() + "\n");
        ok = false;
      }
      if (!ok) {
        std::remove(file_path.c_str());  // no partial file
        return false;
      }
      if (json) {
        char* abs = realpath(file_path.c_str(), nullptr);
        nlohmann::json doc{{"command", line},
                           {"result",
                            {{"file", abs ? std::string(abs) : file_path},
                             {"format", file_xml ? "xml" : "clrprofiler"},
                             {"bytes", redirect_bytes}}}};
        std::free(abs);
        out(doc.dump() + "\n");
      }
      return true;
    };
    clrdiag::v1::AnalyzeRequest req;
    uint64_t id = next_id++;
    req.mutable_command()->set_id(id);
    req.mutable_command()->set_command_line(command_line);
    req.mutable_command()->set_json(json && file_path.empty());
    running = id;
    clrdiag::PhaseMark("client", "command-sent");
    if (!write(req)) {
      running = 0;
      end_redirect(false);
      return false;
    }
    bool first_output = true;
    while (next(&resp)) {
      if (resp.has_progress()) {
        if (!stderr_tty) continue;
        const auto& p = resp.progress();
        std::string text = absl::StrCat(p.stage(), ": ");
        if (p.total() > 0) {
          absl::StrAppend(&text, std::min<uint64_t>(100, p.done() * 100 / p.total()), "%, ");
        }
        absl::StrAppend(&text, Grouped(p.items()), " objects (Ctrl-C cancels)");
        std::fprintf(stderr, "\r\033[K%s", text.c_str());
        progress_shown = true;
        continue;
      }
      if (resp.has_output()) {
        clear_progress();
        if (first_output) clrdiag::PhaseMark("client", "first-output");
        first_output = false;
        out(resp.output().text());
        continue;
      }
      if (resp.has_done()) {
        running = 0;
        clear_progress();
        std::fflush(stdout);
        clrdiag::PhaseMark("client", "done-printed");
        if (log) std::fflush(log);
        if (timing) {
          std::fprintf(stderr, "clrdiag: '%s' took %llu ms in the worker\n", line.c_str(),
                       static_cast<unsigned long long>(resp.done().elapsed_ms()));
        }
        const bool redirected = redirect != nullptr;
        if (!end_redirect(resp.done().ok())) failed = true;
        // The worker ran the command without JSON: its error becomes this one's document.
        if (redirected && json && !resp.done().ok()) {
          out(nlohmann::json{{"command", line}, {"error", resp.done().error()}}.dump() + "\n");
        }
        if (!resp.done().ok()) {
          failed = true;
          std::fprintf(stderr, "%s\n", resp.done().error().c_str());
          if (log && !json) std::fprintf(log, "%s\n", resp.done().error().c_str());
        }
        return !resp.done().exit();
      }
    }
    running = 0;
    end_redirect(false);
    return false;
  };

  bool ended = false;
  for (const auto& c : commands) {
    if (!run(c)) {
      ended = true;
      break;
    }
  }
  if (!ended && stdin_tty) {
    if (StdoutIsTty()) {
      std::printf(
          "Ready to process analysis commands. Type 'help' to list available commands or 'help "
          "[command]' to get detailed help on a command.\nType 'quit' or 'exit' to exit the "
          "session.\n");
    }
    // Completion data: the command names and each command's options, from `help` (JSON).
    Completions completions;
    {
      clrdiag::v1::AnalyzeRequest req;
      req.mutable_command()->set_id(next_id++);
      req.mutable_command()->set_command_line("help");
      req.mutable_command()->set_json(true);
      std::string text;
      if (write(req)) {
        running = next_id - 1;
        while (next(&resp)) {
          if (resp.has_output()) text += resp.output().text();
          if (resp.has_done()) break;
        }
        running = 0;
      }
      auto doc = nlohmann::json::parse(text, nullptr, false);
      if (!doc.is_discarded() && doc.contains("result")) {
        static const std::regex kOption(R"((^|[\s\[|])(-{1,2}[A-Za-z][A-Za-z0-9]*))");
        for (const auto& c : doc["result"]["commands"]) {
          // The options a command takes, as its usage text lists them.
          std::set<std::string> opts;
          std::string usage = c.value("usage", "");
          for (std::sregex_iterator it(usage.begin(), usage.end(), kOption), end; it != end; ++it) {
            opts.insert((*it)[2].str());
          }
          for (const auto& n : c["names"]) {
            std::string name = n.get<std::string>();
            completions.commands.push_back(name);
            completions.options[absl::AsciiStrToLower(name)].assign(opts.begin(), opts.end());
          }
        }
      }
      for (const char* local : {"logopen", "logclose"}) completions.commands.emplace_back(local);
      std::sort(completions.commands.begin(), completions.commands.end());
    }
    g_completions = &completions;
    rl_attempted_completion_function = Complete;
    rl_catch_signals = 0;
    std::string history = HistoryPath();
    stifle_history(1000);
    if (!history.empty()) read_history(history.c_str());
    for (;;) {
      at_prompt = true;
      char* raw = readline("> ");
      at_prompt = false;
      if (!raw) {  // Ctrl-D
        std::fputs("\n", stdout);
        break;
      }
      std::string line(absl::StripAsciiWhitespace(raw));
      std::free(raw);
      if (line.empty()) continue;
      add_history(line.c_str());
      // Saved as soon as it is entered: a killed session keeps its history.
      if (!history.empty()) write_history(history.c_str());
      if (!run(line) || IsExit(line)) break;
    }
  } else if (!ended) {
    std::string line;
    while (std::getline(std::cin, line)) {
      if (absl::StripAsciiWhitespace(line).empty()) continue;
      if (!run(line) || IsExit(line)) break;
    }
  }
  if (log) std::fclose(log);
  {
    std::lock_guard<std::mutex> lock(write_mu);
    stream->WritesDone();
  }
  reader.join();  // the stream ends after WritesDone
  grpc::Status st = stream->Finish();
  clrdiag::PhaseMark("client", "finished");
  if (!st.ok()) return client.Fail(st);
  return failed ? kExitFailed : kExitOk;
}

}  // namespace clrdiag::cli
