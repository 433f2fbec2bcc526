// Cooperative cancellation: the transport layer flips it, long-running core work polls it.
#pragma once

#include <atomic>

namespace clrdiag {

class CancellationToken {
 public:
  void Cancel() { cancelled_.store(true, std::memory_order_relaxed); }
  bool cancelled() const { return cancelled_.load(std::memory_order_relaxed); }

 private:
  std::atomic<bool> cancelled_{false};
};

}  // namespace clrdiag
