#include "core/inventory/inventory.h"

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <future>

#include "absl/strings/str_cat.h"
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

std::vector<DotnetProcess> Inventory::List() {
  std::vector<DotnetProcess> out;
  for (auto& f : procfs::ScanDotnetProcesses(fs_, ::getpid())) {
    DotnetProcess p;
    p.user = UserName(f.uid);
    p.facts = std::move(f);
    out.push_back(std::move(p));
  }
  Enrich(out);
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
