#include "daemon/service/output_fds.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

#include "absl/strings/str_format.h"
#include "core/base/fd_passing.h"

namespace clrdiag::service {

void OutputFdRegistry::Serve(UniqueFd conn, const PeerCred& cred) {
  // The client sends right after connecting; don't let a silent peer hold the accept thread.
  pollfd p{conn.get(), POLLIN, 0};
  if (::poll(&p, 1, 2000) != 1) return;
  UniqueFd fd = ReceiveFd(conn.get());
  if (!fd) return;
  // Only a writable regular file will do.
  struct stat st;
  int fl = ::fcntl(fd.get(), F_GETFL);
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || fl < 0 ||
      (fl & O_ACCMODE) == O_RDONLY) {
    return;
  }
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string token = absl::StrFormat("%016x%016x", rng(), rng());
  {
    std::lock_guard<std::mutex> lock(mu_);
    absl::Time now = absl::Now();
    for (auto it = entries_.begin(); it != entries_.end();) {
      it = it->second.expires < now ? entries_.erase(it) : std::next(it);
    }
    if (entries_.size() >= kMaxPendingOutputFds) return;
    entries_[token] = Entry{std::move(fd), cred.uid, now + kOutputFdTtl};
  }
  std::string line = token + "\n";
  (void)!::send(conn.get(), line.data(), line.size(), MSG_NOSIGNAL);
}

absl::StatusOr<UniqueFd> OutputFdRegistry::Take(const std::string& token, uid_t uid) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(token);
  if (it == entries_.end() || it->second.uid != uid || it->second.expires < absl::Now()) {
    return absl::NotFoundError("unknown or expired output token; run the command again");
  }
  UniqueFd fd = std::move(it->second.fd);
  entries_.erase(it);
  return fd;
}

namespace {
// Named limit: blocks (of up to 1 MiB) waiting to be written into a client's file.
constexpr size_t kMaxQueuedBlocks = 8;
}  // namespace

BlockWriter::BlockWriter(UniqueFd fd) : fd_(std::move(fd)), thread_([this] { Run(); }) {}

BlockWriter::~BlockWriter() { Finish(); }

void BlockWriter::Write(uint64_t offset, const char* data, size_t len) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return queue_.size() < kMaxQueuedBlocks || failed_; });
  if (failed_) return;
  queue_.push_back(Item{offset, len, std::string(data, len)});
  cv_.notify_all();
}

void BlockWriter::Copy(int source, uint64_t offset, size_t len) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!source_) source_.Reset(::fcntl(source, F_DUPFD_CLOEXEC, 0));
  cv_.wait(lock, [this] { return queue_.size() < kMaxQueuedBlocks || failed_; });
  if (failed_) return;
  queue_.push_back(Item{offset, len, std::string()});
  cv_.notify_all();
}

bool BlockWriter::Finish() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    done_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  return !failed_;
}

void BlockWriter::Run() {
  for (;;) {
    Item item;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return !queue_.empty() || done_; });
      if (queue_.empty()) return;
      item = std::move(queue_.front());
      queue_.pop_front();
      cv_.notify_all();
    }
    size_t done = 0;
    while (done < item.len) {
      ssize_t n;
      if (item.data.empty()) {
        loff_t in_off = static_cast<loff_t>(item.offset + done);
        loff_t out_off = in_off;
        n = ::copy_file_range(source_.get(), &in_off, fd_.get(), &out_off, item.len - done, 0);
        if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == EOPNOTSUPP)) {
          // No in-kernel copy between these files: read and write.
          std::string buf(item.len - done, '\0');
          ssize_t r = ::pread(source_.get(), buf.data(), buf.size(),
                              static_cast<off_t>(item.offset + done));
          n = r > 0 ? ::pwrite(fd_.get(), buf.data(), static_cast<size_t>(r),
                               static_cast<off_t>(item.offset + done))
                    : -1;
        }
      } else {
        n = ::pwrite(fd_.get(), item.data.data() + done, item.len - done,
                     static_cast<off_t>(item.offset + done));
      }
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        std::lock_guard<std::mutex> lock(mu_);
        failed_ = true;
        queue_.clear();
        cv_.notify_all();
        return;
      }
      done += static_cast<size_t>(n);
    }
  }
}

}  // namespace clrdiag::service
