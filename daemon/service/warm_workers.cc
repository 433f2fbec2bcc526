#include "daemon/service/warm_workers.h"

#include <unistd.h>

#include <fstream>
#include <utility>

#include "absl/strings/str_cat.h"
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
  if (!w) return;
  if (!enabled()) return End(std::move(w), "warm workers are off");
  if (const uint64_t rss = RssMib(w->pid()); rss > options_.max_rss_mib) {
    spdlog::info("analyze: worker {} not kept: {} MiB resident > analysis.warm_worker_max_rss_mib",
                 w->pid(), rss);
    return End(std::move(w), "too large to keep");
  }
  std::unique_ptr<worker::WorkerProcess> evicted;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) {
      evicted = std::move(w);
    } else {
      if (idle_.size() >= static_cast<size_t>(options_.max_workers)) {
        evicted = std::move(idle_.front().proc);
        idle_.erase(idle_.begin());
      }
      spdlog::info("analyze: worker {} kept idle for the next session on the same dump", w->pid());
      idle_.push_back({key, dump_id, std::move(w), absl::Now()});
    }
  }
  cv_.notify_all();
  End(std::move(evicted), "room for a newer one (analysis.warm_workers)");
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
