#include "core/inventory/inventory.h"

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <future>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/ipc/client.h"

namespace clrdiag::inventory {
namespace {

std::string UserName(uid_t uid) {
  passwd pw;
  passwd* result = nullptr;
  char buf[1024];
  if (::getpwuid_r(uid, &pw, buf, sizeof(buf), &result) == 0 && result) return result->pw_name;
  return "";
}

}  // namespace

void Inventory::Enrich(std::vector<DotnetProcess>& procs) {
  std::vector<std::pair<size_t, std::future<absl::StatusOr<ipc::ProcessInfo>>>> pending;
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::map<std::pair<pid_t, uint64_t>, ipc::ProcessInfo> live;
    for (size_t i = 0; i < procs.size(); ++i) {
      auto key = std::make_pair(procs[i].facts.pid, procs[i].facts.start_time);
      auto it = cache_.find(key);
      if (it != cache_.end()) {
        procs[i].runtime = it->second;
        live.insert(*it);
      }
    }
    cache_.swap(live);
  }
  for (size_t i = 0; i < procs.size(); ++i) {
    if (procs[i].runtime) continue;
    std::string path = procs[i].facts.socket.path;
    absl::Duration timeout = timeout_;
    pending.emplace_back(i, std::async(std::launch::async, [path, timeout] {
                           return ipc::QueryProcessInfo(path, timeout);
                         }));
  }
  for (auto& [i, fut] : pending) {
    auto info = fut.get();
    if (info.ok()) {
      procs[i].runtime = *info;
      std::lock_guard<std::mutex> lock(mu_);
      cache_[{procs[i].facts.pid, procs[i].facts.start_time}] = *info;
    } else {
      procs[i].runtime_error = std::string(info.status().message());
      // Nothing listens on the socket: its runtime died and the pid was reused.
      if (ipc::IsStaleSocket(info.status())) procs[i].facts.pid = 0;
    }
  }
  procs.erase(std::remove_if(procs.begin(), procs.end(),
                             [](const DotnetProcess& p) { return p.facts.pid == 0; }),
              procs.end());
}

void Inventory::AddListenRuntimes(std::vector<DotnetProcess>& procs) {
  if (listen_ == nullptr) return;
  for (auto& rt : listen_->List()) {
    // The same runtime in /proc: its default socket answered with the same cookie.
    auto same = std::find_if(procs.begin(), procs.end(), [&](const DotnetProcess& p) {
      return p.runtime && p.runtime->cookie == rt.cookie;
    });
    if (same != procs.end()) {
      if (!same->listen) same->listen = rt;
      continue;
    }
    DotnetProcess p;
    p.listen_only = true;
    p.facts.pid = static_cast<pid_t>(rt.pid);
    p.facts.ns_pid = static_cast<pid_t>(rt.pid);
    if (rt.info) {
      p.runtime = rt.info;
      p.facts.cmdline = absl::StrSplit(rt.info->command_line, ' ', absl::SkipEmpty());
      if (!p.facts.cmdline.empty()) p.facts.exe = p.facts.cmdline[0];
      const size_t slash = p.facts.exe.rfind('/');
      p.facts.name = slash == std::string::npos ? p.facts.exe : p.facts.exe.substr(slash + 1);
    } else {
      p.runtime_error =
          rt.info_error.empty() ? "the runtime has not answered ProcessInfo yet" : rt.info_error;
    }
    p.listen = std::move(rt);
    procs.push_back(std::move(p));
  }
}

std::vector<DotnetProcess> Inventory::List() {
  std::vector<DotnetProcess> out;
  for (auto& f : procfs::ScanDotnetProcesses(fs_, ::getpid())) {
    DotnetProcess p;
    p.user = UserName(f.uid);
    p.facts = std::move(f);
    out.push_back(std::move(p));
  }
  Enrich(out);
  AddListenRuntimes(out);
  std::sort(out.begin(), out.end(), [](const DotnetProcess& a, const DotnetProcess& b) {
    if (a.facts.name != b.facts.name) return a.facts.name < b.facts.name;
    return a.facts.pid < b.facts.pid;
  });
  return out;
}

absl::StatusOr<std::vector<DotnetProcess>> Inventory::FindByName(const std::string& name) {
  std::vector<DotnetProcess> all = List();
  std::vector<DotnetProcess> match;
  for (auto& p : all) {
    if (p.facts.name == name) match.push_back(std::move(p));
  }
  if (match.empty()) {
    return absl::NotFoundError(
        absl::StrCat("there is no .NET process named '", name, "' (list them with `clrdiag ps`)"));
  }
  return match;
}

}  // namespace clrdiag::inventory
