#include "daemon/service/warm_workers.h"

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "spdlog/spdlog.h"

namespace clrdiag::service {
namespace {

// Resident memory of `pid` in MiB (statm's second field), or 0 when it cannot be read.
uint64_t RssMib(pid_t pid) {
  std::ifstream statm(absl::StrCat("/proc/", pid, "/statm"));
  uint64_t size = 0, resident = 0;
  if (!(statm >> size >> resident)) return 0;
  return (resident * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE))) >> 20;
}

}  // namespace

WarmWorkers::WarmWorkers(Options options) : options_(options) {
  if (enabled()) reaper_ = std::thread([this] { Reaper(); });
}

WarmWorkers::~WarmWorkers() {
  std::vector<Idle> all;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    all.swap(idle_);
  }
  cv_.notify_all();
  if (reaper_.joinable()) reaper_.join();
  for (Idle& i : all) End(std::move(i.proc), "the daemon stops");
}

void WarmWorkers::End(std::unique_ptr<worker::WorkerProcess> w, const char* why) {
  if (!w) return;
  spdlog::info("analyze: idle worker {} ended: {}", w->pid(), why);
  w.reset();  // closes its input, SIGKILL, reaped
}

std::unique_ptr<worker::WorkerProcess> WarmWorkers::Take(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = idle_.begin(); it != idle_.end(); ++it) {
    if (it->key != key) continue;
    std::unique_ptr<worker::WorkerProcess> w = std::move(it->proc);
    idle_.erase(it);
    return w;
  }
  return nullptr;
}

void WarmWorkers::Keep(const std::string& key, const std::string& dump_id,
                       std::unique_ptr<worker::WorkerProcess> w) {
  Add(key, dump_id, std::move(w), /*prebuilt=*/false);
}

void WarmWorkers::KeepPrebuilt(const std::string& key, const std::string& dump_id,
                               std::unique_ptr<worker::WorkerProcess> w) {
  Add(key, dump_id, std::move(w), /*prebuilt=*/true);
}

void WarmWorkers::Add(const std::string& key, const std::string& dump_id,
                      std::unique_ptr<worker::WorkerProcess> w, bool prebuilt) {
  if (!w) return;
  if (!enabled()) return End(std::move(w), "warm workers are off");
  if (const uint64_t rss = RssMib(w->pid()); rss > options_.max_rss_mib) {
    spdlog::info("analyze: worker {} not kept: {} MiB resident > analysis.warm_worker_max_rss_mib",
                 w->pid(), rss);
    return End(std::move(w), "too large to keep");
  }
  std::unique_ptr<worker::WorkerProcess> evicted;
  const char* why = "room for a newer one (analysis.warm_workers)";
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) {
      evicted = std::move(w);
      why = "the daemon stops";
    } else {
      auto victim = idle_.end();
      bool room = true;
      if (idle_.size() >= static_cast<size_t>(options_.max_workers)) {
        // A session's worker makes room by ending the oldest idle one; a prebuilt one only
        // by ending the oldest prebuilt one.
        victim = std::find_if(idle_.begin(), idle_.end(),
                              [prebuilt](const Idle& i) { return !prebuilt || i.prebuilt; });
        room = victim != idle_.end();
      }
      if (!room) {
        evicted = std::move(w);
        why = "no room: every place holds a worker a session left (analysis.warm_workers)";
      } else {
        if (victim != idle_.end()) {
          evicted = std::move(victim->proc);
          idle_.erase(victim);
        }
        if (prebuilt) {
          spdlog::info(
              "analyze: worker {} kept idle after building the heap graph of dump {}, for its "
              "first session",
              w->pid(), dump_id);
        } else {
          spdlog::info("analyze: worker {} kept idle for the next session on the same dump",
                       w->pid());
        }
        idle_.push_back({key, dump_id, std::move(w), absl::Now(), prebuilt});
      }
    }
  }
  cv_.notify_all();
  End(std::move(evicted), why);
}

std::vector<std::string> WarmWorkers::SessionWorkerArgs(const std::string& store_root,
                                                        const std::string& dump_name,
                                                        int64_t data_limit_mib,
                                                        const std::string& graph_file) {
  std::vector<std::string> args = {
      "--store",     store_root, "--dump-fd",        "3",
      "--dump-name", dump_name,  "--data-limit-mib", std::to_string(data_limit_mib)};
  if (!graph_file.empty()) args.insert(args.end(), {"--graph-file", graph_file});
  return args;
}

std::string WarmWorkers::DumpIdentity(const struct stat& st) {
  return absl::StrCat(st.st_dev, ":", st.st_ino, ":", st.st_size, ":", st.st_mtim.tv_sec, ".",
                      st.st_mtim.tv_nsec);
}

std::string WarmWorkers::PrebuiltKey(const struct stat& dump,
                                     const std::vector<std::string>& args) {
  return absl::StrCat(DumpIdentity(dump), "|prebuilt|", absl::StrJoin(args, " "));
}

void WarmWorkers::DropDump(const std::string& id) {
  if (id.empty()) return;
  std::vector<Idle> gone;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = idle_.begin(); it != idle_.end();) {
      if (it->dump_id == id) {
        gone.push_back(std::move(*it));
        it = idle_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (Idle& i : gone) End(std::move(i.proc), "its dump left the catalog");
}

size_t WarmWorkers::idle_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return idle_.size();
}

void WarmWorkers::Reaper() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    const absl::Time now = absl::Now();
    std::vector<Idle> expired;
    absl::Time next = absl::InfiniteFuture();
    for (auto it = idle_.begin(); it != idle_.end();) {
      if (now - it->since >= options_.idle) {
        expired.push_back(std::move(*it));
        it = idle_.erase(it);
      } else {
        next = std::min(next, it->since + options_.idle);
        ++it;
      }
    }
    if (!expired.empty()) {
      lock.unlock();
      for (Idle& i : expired) End(std::move(i.proc), "idle for analysis.warm_worker_idle");
      lock.lock();
      continue;
    }
    if (next == absl::InfiniteFuture()) {
      cv_.wait(lock);
    } else {
      cv_.wait_for(lock, absl::ToChronoMilliseconds(next - now) + std::chrono::milliseconds(5));
    }
  }
}

}  // namespace clrdiag::service
