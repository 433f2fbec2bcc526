// The same-host fast path of `collect -o`: a local client hands the daemon its open output file
// over a side socket (<socket>.fds, SCM_RIGHTS) and gets a token; CollectDump with that token
// writes the dump straight into the file while the runtime writes it, instead of streaming the
// bytes through gRPC for the client to write again. The fd was opened by the client, so the
// daemon can do nothing with it the client could not. Tokens are bound to the sender's uid
// and expire.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/base/unique_fd.h"
#include "daemon/service/peer_registry.h"

namespace clrdiag::service {

inline constexpr char kOutputFdSocketSuffix[] = ".fds";
// Named limits: how long a handed-over fd waits for its CollectDump, and how many may wait.
inline constexpr absl::Duration kOutputFdTtl = absl::Seconds(60);
inline constexpr size_t kMaxPendingOutputFds = 64;

class OutputFdRegistry {
 public:
  // Handles one connection of the side socket: receives an fd, answers "<token>\n".
  void Serve(UniqueFd conn, const PeerCred& cred);
  // Takes the fd registered under `token` by `uid`. NotFound if unknown, expired, or another
  // user's.
  absl::StatusOr<UniqueFd> Take(const std::string& token, uid_t uid);

 private:
  struct Entry {
    UniqueFd fd;
    uid_t uid;
    absl::Time expires;
  };
  std::mutex mu_;
  std::map<std::string, Entry> entries_;
};

// Copies ranges of the dump into a client's output file on its own thread, in the kernel
// (copy_file_range), so the collector's thread can go on hashing the next block meanwhile.
class BlockWriter {
 public:
  explicit BlockWriter(UniqueFd fd);
  ~BlockWriter();  // drains and joins
  // Queues [offset, offset+len) of `source` (the file being written) for copying to the same
  // offset of the output; `source` is duplicated on first use.
  void Copy(int source, uint64_t offset, size_t len);
  // Queues a block given in memory (tests, and sources that cannot be copied from).
  void Write(uint64_t offset, const char* data, size_t len);
  // Waits until everything queued is written; false if a write failed (e.g. the client's disk
  // is full: the catalog copy is unaffected, and the client sees its short file).
  bool Finish();

 private:
  void Run();
  struct Item {
    uint64_t offset;
    size_t len;
    std::string data;  // empty: copy from source_
  };
  UniqueFd fd_;
  UniqueFd source_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> queue_;
  bool done_ = false;
  bool failed_ = false;
  std::thread thread_;
};

}  // namespace clrdiag::service
