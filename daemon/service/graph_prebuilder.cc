#include "daemon/service/graph_prebuilder.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <vector>

#include "absl/strings/str_cat.h"
#include "clrdiag/v1/clrdiag.pb.h"
#include "core/base/unique_fd.h"
#include "daemon/service/warm_workers.h"
#include "daemon/worker/frame_io.h"
#include "daemon/worker/worker_process.h"
#include "spdlog/spdlog.h"

namespace clrdiag::service {
namespace {
std::mutex instance_mu;
GraphPrebuilder* instance = nullptr;
}  // namespace

void GraphPrebuilder::Boost(const std::string& id) {
  std::lock_guard<std::mutex> outer(instance_mu);
  if (instance == nullptr) return;
  std::lock_guard<std::mutex> lock(instance->mu_);
  if (instance->running_id_ != id || instance->running_pid_ <= 0) return;
  // Every thread of the worker (nice values are per thread): its build thread among them, so
  // that the heap walk's threads it starts from now on inherit normal priority too.
  const pid_t pid = instance->running_pid_;
  ::setpriority(PRIO_PROCESS, static_cast<id_t>(pid), 0);
  std::error_code ec;
  for (const auto& e :
       std::filesystem::directory_iterator(absl::StrCat("/proc/", pid, "/task"), ec)) {
    const long tid = std::strtol(e.path().filename().c_str(), nullptr, 10);
    if (tid > 0) ::setpriority(PRIO_PROCESS, static_cast<id_t>(tid), 0);
  }
  spdlog::info("heap graph of dump {}: a session needs it, building at normal priority", id);
}

GraphPrebuilder::GraphPrebuilder(Options options) : options_(std::move(options)) {
  thread_ = std::thread([this] { Loop(); });
  std::lock_guard<std::mutex> lock(instance_mu);
  instance = this;
}

GraphPrebuilder::~GraphPrebuilder() { Stop(); }

void GraphPrebuilder::Stop() {
  {
    std::lock_guard<std::mutex> outer(instance_mu);
    if (instance == this) instance = nullptr;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    queue_.clear();
    backlog_.clear();
    if (running_pid_ > 0) ::kill(running_pid_, SIGKILL);
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void GraphPrebuilder::Enqueue(const std::string& id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_ || std::find(queue_.begin(), queue_.end(), id) != queue_.end()) return;
    backlog_.erase(std::remove(backlog_.begin(), backlog_.end(), id), backlog_.end());
    queue_.push_back(id);
  }
  cv_.notify_all();
}

void GraphPrebuilder::EnqueueBacklog(const std::string& id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_ || std::find(queue_.begin(), queue_.end(), id) != queue_.end() ||
        std::find(backlog_.begin(), backlog_.end(), id) != backlog_.end()) {
      return;
    }
    backlog_.push_back(id);
  }
  cv_.notify_all();
}

bool GraphPrebuilder::GraphLooksValid(const std::string& dump, const std::string& graph) {
  struct stat st {};
  if (::stat(dump.c_str(), &st) != 0) return false;
  // The header's start as core/dac/root_graph.cc writes it: 8 bytes of magic, then the key.
  const uint64_t key[4] = {static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino),
                           static_cast<uint64_t>(st.st_size),
                           static_cast<uint64_t>(st.st_mtim.tv_sec) * 1000000000ull +
                               static_cast<uint64_t>(st.st_mtim.tv_nsec)};
  UniqueFd fd(::open(graph.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return false;
  char header[8 + sizeof(key)];
  if (::pread(fd.get(), header, sizeof(header), 0) != static_cast<ssize_t>(sizeof(header))) {
    return false;
  }
  return std::memcmp(header, "CLRDHG01", 8) == 0 && std::memcmp(header + 8, key, sizeof(key)) == 0;
}

void GraphPrebuilder::Cancel(const std::string& id) {
  std::unique_lock<std::mutex> lock(mu_);
  queue_.erase(std::remove(queue_.begin(), queue_.end(), id), queue_.end());
  backlog_.erase(std::remove(backlog_.begin(), backlog_.end(), id), backlog_.end());
  if (running_id_ != id) return;
  cancel_running_ = true;
  if (running_pid_ > 0) ::kill(running_pid_, SIGKILL);
  cv_.wait(lock, [&] { return running_id_ != id; });
}

void GraphPrebuilder::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || !queue_.empty() || !backlog_.empty(); });
    if (stop_) return;
    const bool fresh = !queue_.empty();
    std::deque<std::string>& from = fresh ? queue_ : backlog_;
    running_id_ = from.front();
    cancel_running_ = false;
    from.pop_front();
    const std::string id = running_id_;
    lock.unlock();
    Build(id, fresh && options_.warm != nullptr && options_.warm->enabled());
    lock.lock();
    running_id_.clear();
    cv_.notify_all();
  }
}

void GraphPrebuilder::Build(const std::string& id, bool keep) {
  const std::string dump = absl::StrCat(options_.store_root, "/dumps/", id, "/dump");
  const std::string graph = absl::StrCat(options_.store_root, "/dumps/", id, "/heapgraph");
  UniqueFd fd(::open(dump.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return;  // gone already
  struct stat dst {};
  if (::fstat(fd.get(), &dst) != 0) return;
  const auto t0 = std::chrono::steady_clock::now();
  worker::WorkerProcess::Options wopts;
  wopts.fd3 = fd.get();
  // A session's worker on this dump gets the same arguments (but --build-graph): a kept build
  // worker is the one that session would have started.
  const std::vector<std::string> base =
      WarmWorkers::SessionWorkerArgs(options_.store_root, dump, options_.worker_memory_mib, graph);
  std::vector<std::string> args = base;
  args.emplace_back("--build-graph");
  if (keep) args.emplace_back("--reusable");
  int from_worker = -1;
  {
    // Started under the lock, so that Cancel sees either no worker or its pid.
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_ || cancel_running_) return;
    auto w = worker::WorkerProcess::Start(options_.worker_path, args, wopts);
    if (!w.ok()) {
      spdlog::warn("heap graph of dump {}: {}", id, std::string(w.status().message()));
      return;
    }
    proc_ = std::move(*w);
    running_pid_ = proc_->pid();
    from_worker = proc_->from_worker();
    if (!keep) proc_->CloseInput();
  }
  fd.Reset();
  auto elapsed_ms = [&t0] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 t0)
        .count();
  };
  if (keep) {
    // A worker that stays says when the graph is built (an `opened` frame); one that fails,
    // or is killed (Cancel, Stop), ends without it.
    v1::AnalyzeResponse built;
    if (worker::ReadFrame(from_worker, &built).ok() && built.has_opened()) {
      std::unique_ptr<worker::WorkerProcess> proc;
      bool cancelled = false;
      {
        std::lock_guard<std::mutex> lock(mu_);
        running_pid_ = 0;  // from here on, Cancel finds it in the pool (DropDump)
        proc = std::move(proc_);
        cancelled = stop_ || cancel_running_;
      }
      spdlog::info("heap graph of dump {} built in {} ms (worker {})", id, elapsed_ms(),
                   proc->pid());
      if (!cancelled) {
        options_.warm->KeepPrebuilt(WarmWorkers::PrebuiltKey(dst, base), id, std::move(proc));
      }
      return;  // a cancelled one: killed and reaped here
    }
    std::lock_guard<std::mutex> lock(mu_);
    proc_->CloseInput();  // one that answered anything else ends at the end of its input
  }
  // Wait for its end without reaping it, so that Cancel never signals a reused pid.
  siginfo_t info{};
  while (::waitid(P_PID, static_cast<id_t>(running_pid_), &info, WEXITED | WNOWAIT) < 0 &&
         errno == EINTR) {
  }
  std::unique_ptr<worker::WorkerProcess> proc;
  {
    std::lock_guard<std::mutex> lock(mu_);
    running_pid_ = 0;
    proc = std::move(proc_);
  }
  const pid_t pid = proc->pid();
  bool clean = false;
  const std::string how = proc->Wait(&clean);
  if (clean) {
    spdlog::info("heap graph of dump {} built in {} ms (worker {})", id, elapsed_ms(), pid);
  } else {
    spdlog::info("heap graph of dump {} not built: the worker {} after {} ms", id, how,
                 elapsed_ms());
  }
}

}  // namespace clrdiag::service
